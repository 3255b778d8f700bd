// In-process fan-out of "this incident changed" to the console's live streams (server-sent events).

export type IncidentListener = (incidentId: string) => void;

/**
 * Tells every subscriber which incident changed (a stored alert, an acknowledgement). Listeners
 * re-read the incident, so a missed or doubled notice costs nothing but a query. One process
 * only: a second backend instance's changes reach its own subscribers.
 *
 * @example const hub = createIncidentHub(); const stop = hub.subscribe((id) => send(id));
 */
export function createIncidentHub() {
  const listeners = new Set<IncidentListener>();
  const closing = new AbortController();
  return {
    subscribe(listener: IncidentListener): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    publish(incidentId: string): void {
      for (const listener of listeners) {
        try {
          listener(incidentId);
        } catch {
          // One broken stream must not stop the others.
        }
      }
    },
    /** Aborts when the backend shuts down, so open event streams end instead of holding it. */
    closed: closing.signal,
    close(): void {
      closing.abort(new Error("shutting down"));
    },
    get size() {
      return listeners.size;
    },
  };
}

export type IncidentHub = ReturnType<typeof createIncidentHub>;
