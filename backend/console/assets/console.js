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

  // After a stream the browser gave up on, the next try waits this long, doubling up to the last.
  const RETRY_MS = [5_000, 10_000, 20_000, 30_000];

  /** What ended the stream for good: `signed-out` when the server answers 401, else `false`. */
  async function whyStopped() {
    try {
      const res = await fetch("/events", {
        headers: { accept: "text/event-stream" },
        signal: AbortSignal.timeout(10_000),
      });
      res.body?.cancel();
      return res.status === 401 ? "signed-out" : "false";
    } catch {
      return "false";
    }
  }

  function live() {
    const status = document.getElementById("live-status");
    let tries = 0;
    function say(state, ...content) {
      // Said once per change: the status is a live region, read aloud on every change.
      const text = content.map((c) => (typeof c === "string" ? c : c.textContent)).join("");
      if (status.dataset.live === state && status.textContent === text) return;
      status.dataset.live = state;
      status.replaceChildren(...content);
    }
    function connect() {
      const source = new EventSource("/events");
      source.addEventListener("ready", () => {
        tries = 0;
        say("true", "Live: incidents appear and move here as they happen.");
      });
      source.addEventListener("error", async () => {
        // CONNECTING: the browser reconnects by itself (a dropped connection, a restart).
        if (source.readyState !== EventSource.CLOSED) {
          say("false", "Live updates interrupted; reconnecting.");
          return;
        }
        // CLOSED: the answer was no event stream (401 once the sign-in ended, a proxy's 502), and
        // the browser never tries again. We do, with a new one: signing in again in another tab
        // brings the rows back without a reload.
        source.close();
        const delay = RETRY_MS[Math.min(tries, RETRY_MS.length - 1)];
        tries++;
        if ((await whyStopped()) === "signed-out") {
          const link = document.createElement("a");
          link.href = `/signin?next=${encodeURIComponent(location.pathname + location.search)}`;
          link.textContent = "sign in again";
          say(
            "signed-out",
            "Live updates stopped: ",
            link,
            ". They start again by themselves once you have.",
          );
        } else {
          say("false", "Live updates stopped; trying again.");
        }
        setTimeout(connect, delay);
      });
      source.addEventListener("incident", showIncident);
    }
    /**
     * The first message of each (re)connection names the incidents open now: a row of the Open
     * table that is not among them resolved (or left the list) while the stream was lost, and no
     * message will name it again. Its row, if it is still listed, comes right after.
     */
    function keepOpen(ids) {
      const open = new Set(ids);
      for (const row of document.querySelectorAll("#open-incidents tr[data-incident]")) {
        if (!open.has(row.dataset.incident)) removeRow(row);
      }
      updateEmpty();
    }
    /**
     * Removes a row that leaves its list. When the focus was in it, it does not fall to the page's
     * start: it goes to the next row's link, or with none to the list's heading, and the status
     * says which incident left.
     */
    function removeRow(old) {
      const active = document.activeElement;
      if (!active || !old.contains(active)) {
        old.remove();
        return;
      }
      const heading = old.closest("section")?.querySelector("h2");
      const started = old.querySelector("a")?.textContent ?? "";
      const stream = old.cells[1]?.firstChild?.textContent ?? "";
      const target = old.nextElementSibling?.querySelector("a") ?? heading;
      old.remove();
      if (target === heading) heading?.setAttribute("tabindex", "-1");
      target?.focus();
      say(status.dataset.live || "true", `Incident ${started} on ${stream} left this list.`);
    }
    function showIncident(event) {
      const message = JSON.parse(event.data);
      if (Array.isArray(message.open_now)) {
        keepOpen(message.open_now);
        return;
      }
      // The row was rendered (and escaped) by the server's JSX; a template only parses it.
      const template = document.createElement("template");
      template.innerHTML = message.row;
      // No row: the incident is no longer listed here (a resolved one older than the hour).
      const row = template.content.querySelector("tr");
      // A keyboard or screen-reader user on the row keeps their place: the same control of the
      // new row takes the focus the old one had.
      let focused = null;
      for (const old of document.querySelectorAll("tr[data-incident]")) {
        if (old.dataset.incident !== message.incident_id) continue;
        if (!row) {
          removeRow(old);
          continue;
        }
        const active = document.activeElement;
        if (active && old.contains(active)) {
          const same = [...old.querySelectorAll("a, button, input, select, textarea")];
          focused = { index: same.indexOf(active), href: active.getAttribute("href") };
        }
        old.remove();
      }
      if (!row) {
        updateEmpty();
        return;
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
      if (focused) {
        const controls = [...row.querySelectorAll("a, button, input, select, textarea")];
        const target =
          controls.find((c) => focused.href && c.getAttribute("href") === focused.href) ??
          controls[focused.index] ??
          row.querySelector("a");
        target?.focus();
      }
      updateEmpty();
    }
    connect();
    // Only the "age" column changes with time; it is recomputed locally, nothing is fetched.
    setInterval(refreshAges, 10_000);
  }

  const RED = "#b3261e";
  const BLUE = "#0b57d0";
  const GREEN = "#2e7d32";
  const ONSET = "#7b1fa2";

  function fmt(v) {
    return v == null ? "–" : String(Number(v.toPrecision(4)));
  }

  function utcTime(seconds) {
    return seconds == null ? "–" : `${new Date(seconds * 1000).toISOString().slice(11, 19)}Z`;
  }

  // The time axis's tick labels as the rest of the page writes times (2026-12-08, 00:10, 24-hour),
  // not uPlot's default (12/8/26, 12:10am), which reads as August in most of the world. Rows:
  // the tick step (seconds) from which a row applies, its label, then the label of a tick where
  // the year, month, day, hour or minute turns over (added below it), as uPlot's own table.
  const DAY = 86400;
  const YMD = "\n{YYYY}-{MM}-{DD}";
  const TIME_AXIS = [
    [365 * DAY, "{YYYY}", null, null, null, null, null, null, 1],
    [28 * DAY, "{YYYY}-{MM}", null, null, null, null, null, null, 1],
    [DAY, "{MM}-{DD}", "\n{YYYY}", null, null, null, null, null, 1],
    [3600, "{HH}:00", YMD, null, YMD, null, null, null, 1],
    [60, "{HH}:{mm}", YMD, null, YMD, null, null, null, 1],
    [1, ":{ss}", `${YMD} {HH}:{mm}`, null, `${YMD} {HH}:{mm}`, null, "\n{HH}:{mm}", null, 1],
    [
      0.001,
      ":{ss}.{fff}",
      `${YMD} {HH}:{mm}`,
      null,
      `${YMD} {HH}:{mm}`,
      null,
      "\n{HH}:{mm}",
      null,
      1,
    ],
  ];

  function lastDefined(values) {
    for (let i = values.length - 1; i >= 0; i--) if (values[i] != null) return values[i];
    return null;
  }

  // uPlot's legend shows "--" while the cursor is off the plot; ours shows the latest values then.
  function legendValue(format) {
    return (u, v, sidx, idx) => format(idx == null ? lastDefined(u.data[sidx]) : v);
  }

  /** The typical band as two flat series and a fill between them, when the page gave one. */
  function addBand(el, x, data, series, small) {
    if (el.dataset.low === undefined || el.dataset.high === undefined) return undefined;
    const low = Number(el.dataset.low);
    const high = Number(el.dataset.high);
    data.push(
      x.map(() => high),
      x.map(() => low),
    );
    const edge = {
      stroke: GREEN,
      width: small ? 0.5 : 1,
      dash: [4, 4],
      points: { show: false },
      value: legendValue(fmt),
    };
    series.push({ ...edge, label: "typical high" }, { ...edge, label: "typical low" });
    return [{ series: [data.length - 2, data.length - 1], fill: "rgba(46, 125, 50, 0.15)" }];
  }

  /** A vertical line and label at the onset, drawn over the series. */
  function onsetMarker(at, small) {
    return function drawOnset(u) {
      const ratio = window.devicePixelRatio || 1;
      const x = Math.round(u.valToPos(at, "x", true));
      const { top, height } = u.bbox;
      const ctx = u.ctx;
      ctx.save();
      ctx.strokeStyle = ONSET;
      ctx.lineWidth = 2 * ratio;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
      if (!small) {
        ctx.fillStyle = ONSET;
        ctx.font = `${12 * ratio}px system-ui, sans-serif`;
        ctx.fillText("onset", x + 4 * ratio, top + 14 * ratio);
      }
      ctx.restore();
    };
  }

  /** uPlot options and data for one `.chart` element: a history (data-series) or a window. */
  function chartSpec(el) {
    const small = el.classList.contains("small");
    const reading = {
      label: "reading",
      stroke: RED,
      width: small ? 1.5 : 2,
      value: legendValue(fmt),
    };
    if (el.dataset.series) {
      const d = JSON.parse(el.dataset.series);
      const data = [d.t, d.values];
      reading.points = { show: d.t.length <= 120, size: 6, fill: RED, stroke: RED };
      const series = [{ label: "time (UTC)", value: legendValue(utcTime) }, reading];
      if (d.level) {
        data.push(d.level);
        series.push({
          label: "running level",
          stroke: BLUE,
          width: 1.5,
          dash: [6, 4],
          points: { show: false },
          value: legendValue(fmt),
        });
      }
      const bands = addBand(el, d.t, data, series, small);
      return {
        data,
        opts: {
          series,
          bands,
          scales: { x: { time: true } },
          tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
          axes: small
            ? [{ show: false }, { size: 48 }]
            : [
                { label: "time (UTC)", values: TIME_AXIS },
                { label: "reading", size: 56 },
              ],
          hooks: { draw: [onsetMarker(d.onset, small)] },
          legend: { show: !small },
        },
      };
    }
    const values = JSON.parse(el.dataset.values);
    const x = values.map((_, i) => i - (values.length - 1));
    const data = [x, values];
    reading.points = { show: true, size: 8, fill: RED, stroke: RED };
    const series = [{ label: "frame", value: legendValue((v) => (v == null ? "–" : v)) }, reading];
    const bands = addBand(el, x, data, series, small);
    return {
      data,
      opts: {
        series,
        bands,
        scales: { x: { time: false } },
        axes: [{ label: "frames before the latest" }, { label: "reading" }],
      },
    };
  }

  function charts() {
    const uPlot = window.uPlot;
    if (!uPlot) return;
    const plots = new Map();
    let first = true;
    const draw = (el) => {
      const { data, opts } = chartSpec(el);
      const small = el.classList.contains("small");
      opts.width = Math.max(small ? 160 : 260, el.clientWidth || 360);
      opts.height = small ? 90 : 220;
      if (first) {
        first = false;
        // Read by the browser test: time from navigation to the first chart on screen.
        opts.hooks = opts.hooks ?? {};
        opts.hooks.ready = [() => performance.mark("first-chart")];
      }
      el.classList.add("drawn");
      plots.set(el, new uPlot(opts, data, el));
    };
    // Charts follow their column's width (a laptop screen, a resized window).
    const resize = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const plot = plots.get(entry.target);
        const width = Math.floor(entry.contentRect.width);
        if (plot && width > 0 && Math.abs(width - plot.width) > 1) {
          plot.setSize({ width, height: plot.height });
        }
      }
    });
    const drawAndFollow = (el) => {
      draw(el);
      resize.observe(el);
    };
    // The flagged sensors' charts (at most a dozen) are drawn straight away; the small charts of
    // related sensors (up to 16 each) as they come near the screen, so a page of many starts quickly.
    const near = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          if (!entry.isIntersecting || plots.has(entry.target)) continue;
          near.unobserve(entry.target);
          drawAndFollow(entry.target);
        }
      },
      { rootMargin: "400px 0px" },
    );
    const queue = [];
    for (const el of document.querySelectorAll(".chart[data-values], .chart[data-series]")) {
      if (el.classList.contains("small")) near.observe(el);
      else queue.push(el);
    }
    // One chart per frame: the browser shows each as it is drawn, the strongest sensor's first.
    const next = () => {
      const el = queue.shift();
      if (!el) return;
      drawAndFollow(el);
      requestAnimationFrame(next);
    };
    next();
  }

  // After a form was sent, the page it leads to says what came of it: the refusal beside the form,
  // or what was done. The focus starts on that message, not at the top of the page 7 to 11 Tabs
  // away, and a screen reader reads it. Only messages made focusable for this (tabindex="-1").
  function focusOutcome() {
    const message =
      document.querySelector('main [role="alert"][tabindex="-1"]') ??
      document.querySelector('main [role="status"][tabindex="-1"]');
    message?.focus();
  }

  focusOutcome();
  if (section === "now") live();
  if (section === "incident") charts();
})();
