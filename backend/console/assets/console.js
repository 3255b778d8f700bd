// Console client: live rows on the Now page (server-sent events) and charts on the Incident page (uPlot).
// Plain browser JavaScript served as is: there is no front-end build step. Pages work without it.
(() => {
  const section = document.body.dataset.section;

  /** The same rule as format.ts's age(): "42 s", "3 min", "2 h 5 min", "3 d". */
  function age(iso) {
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h} h ${m % 60} min`;
    return `${Math.floor(h / 24)} d`;
  }

  function refreshAges() {
    for (const t of document.querySelectorAll("time[data-age]")) t.textContent = age(t.dateTime);
  }

  function updateEmpty() {
    for (const id of ["open-incidents", "resolved-incidents"]) {
      const body = document.querySelector(`#${id} tbody`);
      const empty = document.getElementById(`${id}-empty`);
      if (body && empty) empty.hidden = body.rows.length > 0;
    }
  }

  function live() {
    const status = document.getElementById("live-status");
    const source = new EventSource("/events");
    source.addEventListener("ready", () => {
      status.textContent = "Live: incidents appear and move here as they happen.";
      status.dataset.live = "true";
    });
    source.addEventListener("error", () => {
      status.textContent = "Live updates interrupted; reconnecting.";
      status.dataset.live = "false";
    });
    source.addEventListener("incident", (event) => {
      const message = JSON.parse(event.data);
      // The row was rendered (and escaped) by the server's JSX; a template only parses it.
      const template = document.createElement("template");
      template.innerHTML = message.row;
      const row = template.content.querySelector("tr");
      if (!row) return;
      for (const old of document.querySelectorAll("tr[data-incident]")) {
        if (old.dataset.incident === message.incident_id) old.remove();
      }
      const table = message.state === "open" ? "open-incidents" : "resolved-incidents";
      const body = document.querySelector(`#${table} tbody`);
      let before = null;
      for (const r of body.rows) {
        if (r.dataset.started < message.started_at) {
          before = r;
          break;
        }
      }
      body.insertBefore(row, before);
      updateEmpty();
    });
    // Only the "age" column changes with time; it is recomputed locally, nothing is fetched.
    setInterval(refreshAges, 10_000);
  }

  function charts() {
    const uPlot = window.uPlot;
    if (!uPlot) return;
    for (const el of document.querySelectorAll(".chart[data-values]")) {
      const values = JSON.parse(el.dataset.values);
      const x = values.map((_, i) => i - (values.length - 1));
      const data = [x, values];
      const series = [
        { label: "frame" },
        {
          label: el.dataset.name,
          stroke: "#b3261e",
          width: 2,
          points: { show: true, size: 8, fill: "#b3261e", stroke: "#b3261e" },
        },
      ];
      let bands;
      if (el.dataset.low !== undefined && el.dataset.high !== undefined) {
        const low = Number(el.dataset.low);
        const high = Number(el.dataset.high);
        data.push(
          x.map(() => high),
          x.map(() => low),
        );
        const edge = { stroke: "#2e7d32", width: 1, dash: [4, 4], points: { show: false } };
        series.push({ ...edge, label: "typical high" }, { ...edge, label: "typical low" });
        bands = [{ series: [2, 3], fill: "rgba(46, 125, 50, 0.15)" }];
      }
      const opts = {
        width: Math.max(260, Math.min(560, el.clientWidth || 360)),
        height: 200,
        series,
        bands,
        scales: { x: { time: false } },
        axes: [{ label: "frames before the latest" }, { label: "reading" }],
      };
      el.classList.add("drawn");
      new uPlot(opts, data, el);
    }
  }

  if (section === "now") live();
  if (section === "incident") charts();
})();
