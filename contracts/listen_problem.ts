// Why a service could not listen, in words, and which setting to change: shared by the engine and the backend.

/**
 * Why binding failed, in words, and the setting to change (`host` or `port`).
 *
 * @example listenProblem({ code: "EADDRINUSE" }); // { reason: "address in use", fix: "port" }
 */
export function listenProblem(error: unknown): { reason: string; fix: "host" | "port" } {
  const { code, name, message } = error as { code?: string; name?: string; message?: string };
  // Node sets `code`; Deno raises named errors (AddrInUse, ...).
  if (code === "EADDRINUSE" || name === "AddrInUse") {
    return { reason: "address in use", fix: "port" };
  }
  if (code === "EACCES" || name === "PermissionDenied") {
    return { reason: "permission denied", fix: "port" };
  }
  if (code === "EADDRNOTAVAIL" || name === "AddrNotAvailable") {
    return { reason: "address not available on this machine", fix: "host" };
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NONAME") {
    return { reason: "host name does not resolve", fix: "host" };
  }
  return { reason: message ?? String(error), fix: "host" };
}
