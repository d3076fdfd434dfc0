// The saga console: the operator API (/v1/sagas...) rendered as a list, a timeline and a history.
// Plain DOM, no framework: every value from the API goes in as text (textContent), never as HTML.
"use strict";

(() => {
  const REFRESH_MS = 5000;
  const PAGE_SIZE = 25;
  const STORE = window.sessionStorage;
  const FINISHED = new Set(["completed", "failed"]);
  const SETTLED_STEPS = new Set(["done", "failed", "compensated", "skipped"]);
  const STATUSES = ["running", "compensating", "completed", "failed"];
  const EVENT_LABELS = {
    saga_started: "saga started",
    step_queued: "step queued",
    step_started: "step started",
    step_retried: "step retried",
    step_done: "step done",
    step_failed: "step failed",
    compensation_queued: "compensation queued",
    compensation_started: "compensation started",
    compensation_done: "compensation done",
    pivot_passed: "pivot passed",
    redriven: "re-driven",
    saga_completed: "saga completed",
    saga_failed: "saga failed",
    attention_marked: "marked needs attention",
    attention_cleared: "needs attention cleared",
  };

  const $ = (id) => document.getElementById(id);
  const state = {
    pages: [null], // the cursor of each page seen, the first page's is null
    selected: null,
    paused: false,
    running: null, // the refresh under way
    again: false,
  };

  // ---------- small helpers ----------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // ISO 8601 from the API, with microseconds: keep milliseconds, which every browser parses.
  function parseTime(value) {
    if (!value) return null;
    return Date.parse(String(value).replace(/(\.\d{3})\d+/, "$1"));
  }

  const pad = (n, width = 2) => String(n).padStart(width, "0");

  function formatTime(value, withMillis = false) {
    const ms = typeof value === "number" ? value : parseTime(value);
    if (ms === null || Number.isNaN(ms)) return "—";
    const d = new Date(ms);
    const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return `${date} ${time}${withMillis ? "." + pad(d.getMilliseconds(), 3) : ""}`;
  }

  function formatDuration(ms) {
    if (ms === null || Number.isNaN(ms)) return "—";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const seconds = ms / 1000;
    if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return `${hours} h ${minutes % 60} min`;
    return `${Math.floor(hours / 24)} d ${hours % 24} h`;
  }

  function showMessage(node, text, kind) {
    node.textContent = text || "";
    node.classList.toggle("error", kind === "error");
    node.classList.toggle("ok", kind === "ok");
  }

  function errorText(body, fallback) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && Array.isArray(body.detail)) return body.detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
    return fallback;
  }

  // ---------- the session: tokens in sessionStorage, gone with the tab ----------

  const session = {
    get access() { return STORE.getItem("console.access_token"); },
    get refresh() { return STORE.getItem("console.refresh_token"); },
    get email() { return STORE.getItem("console.email"); },
    save(tokens, email) {
      STORE.setItem("console.access_token", tokens.access_token);
      STORE.setItem("console.refresh_token", tokens.refresh_token);
      if (email) STORE.setItem("console.email", email);
    },
    clear() {
      for (const key of ["console.access_token", "console.refresh_token", "console.email"]) STORE.removeItem(key);
    },
  };

  class SignedOut extends Error {}

  async function request(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (session.access) headers.Authorization = `Bearer ${session.access}`;
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    return { status: response.status, body: data, headers: response.headers };
  }

  // An operator call: on 401 the refresh token is tried once (access tokens live minutes); 401
  // again or 403 ends the console's session with a message on the login form.
  // The list and the saga load side by side: one refresh serves both (a refresh token is used once).
  let renewing = null;
  function renew() {
    if (!renewing) {
      renewing = request("POST", "/v1/auth/refresh", { refresh_token: session.refresh })
        .then((refreshed) => {
          if (refreshed.status !== 200) return false;
          session.save(refreshed.body);
          return true;
        })
        .finally(() => {
          renewing = null;
        });
    }
    return renewing;
  }

  async function api(method, path, body) {
    let answer = await request(method, path, body);
    if (answer.status === 401 && session.refresh && (await renew())) {
      answer = await request(method, path, body);
    }
    if (answer.status === 401) {
      signOut("Your session has ended. Log in again.");
      throw new SignedOut();
    }
    if (answer.status === 403) {
      const email = session.email || "This account";
      signOut(`${email} is not an operator: the console needs an account with the operator role ` +
        "(python -m users_svc.operators grant EMAIL).");
      throw new SignedOut();
    }
    return answer;
  }

  function showLogin(message) {
    $("console-view").hidden = true;
    $("session").hidden = true;
    $("login-view").hidden = false;
    showMessage($("login-message"), message, message ? "error" : null);
    $("login-email").focus();
  }

  function showConsole() {
    $("login-view").hidden = true;
    $("console-view").hidden = false;
    $("session").hidden = false;
    $("session-email").textContent = session.email || "";
  }

  function signOut(message) {
    session.clear();
    state.selected = null;
    state.pages = [null];
    showLogin(message);
  }

  async function logIn(event) {
    event.preventDefault();
    const email = $("login-email").value.trim();
    const password = $("login-password").value;
    showMessage($("login-message"), "Logging in…");
    let answer;
    try {
      answer = await request("POST", "/v1/auth/login", { email, password });
    } catch (err) {
      showMessage($("login-message"), `The server could not be reached (${err.message}).`, "error");
      return;
    }
    if (answer.status !== 200) {
      const reasons = {
        401: "Wrong email or password.",
        429: `Too many attempts; try again in ${answer.headers.get("Retry-After") || "a few"} seconds.`,
      };
      showMessage($("login-message"), reasons[answer.status] || errorText(answer.body, `Login failed (${answer.status}).`), "error");
      return;
    }
    $("login-password").value = "";
    session.save(answer.body, email);
    showMessage($("login-message"), "");
    await start();
  }

  async function logOut() {
    const refresh = session.refresh;
    session.clear();
    if (refresh) {
      try {
        await request("POST", "/v1/auth/logout", { refresh_token: refresh });
      } catch {
        // the tokens are gone from this tab either way
      }
    }
    signOut("You are logged out.");
    showMessage($("login-message"), "You are logged out.", "ok");
  }

  // ---------- the list ----------

  function filterQuery() {
    const form = $("filters");
    const params = new URLSearchParams();
    for (const name of ["kind", "status", "user_id", "email"]) {
      const value = form.elements[name].value.trim();
      if (value) params.set(name, value);
    }
    for (const name of ["created_since", "created_until"]) {
      const value = form.elements[name].value;
      if (value) params.set(name, new Date(value).toISOString()); // the browser's local time, as UTC
    }
    if (form.elements.stuck.checked) params.set("stuck", "true");
    if (form.elements.attention.checked) params.set("attention", "true");
    params.set("limit", String(PAGE_SIZE));
    return params;
  }

  async function loadList() {
    const params = filterQuery();
    const cursor = state.pages[state.pages.length - 1];
    if (cursor) params.set("cursor", cursor);
    const answer = await api("GET", `/v1/sagas?${params}`);
    if (answer.status !== 200) {
      showMessage($("list-message"), errorText(answer.body, `The list could not be loaded (${answer.status}).`), "error");
      return;
    }
    showMessage($("list-message"), "");
    renderCounts(answer.body.counts || {});
    renderRows(answer.body.items || []);
    state.nextCursor = answer.body.next_cursor || null;
    $("page-next").disabled = !state.nextCursor;
    $("page-prev").disabled = state.pages.length < 2;
    $("page-first").disabled = state.pages.length < 2;
    $("page-number").textContent = `Page ${state.pages.length}`;
  }

  // The API stops counting at counts.limit: a count equal to it reads "10000+".
  function countText(counts, value) {
    const n = value ?? 0;
    return counts.limit && n >= counts.limit ? `${counts.limit}+` : String(n);
  }

  function renderCounts(counts) {
    const box = $("counts");
    const form = $("filters");
    const current = form.elements.status.value;
    box.replaceChildren();
    for (const status of STATUSES) {
      box.append(el("button", {
        type: "button",
        class: `count status-${status}`,
        "aria-pressed": String(current === status),
        title: current === status ? "Show every status" : `Show only ${status} sagas`,
        onclick: () => {
          form.elements.status.value = current === status ? "" : status;
          applyFilters();
        },
      }, el("span", { class: "count-label", text: status }), " ", el("strong", { text: countText(counts, counts[status]) })));
    }
    const attention = form.elements.attention.checked;
    box.append(el("button", {
      type: "button",
      class: "count attention",
      "aria-pressed": String(attention),
      title: attention ? "Show every saga" : "Show only sagas that need attention",
      onclick: () => {
        form.elements.attention.checked = !attention;
        applyFilters();
      },
    }, el("span", { class: "count-label", text: "needs attention" }), " ", el("strong", { text: countText(counts, counts.attention) })));
  }

  function statusBadge(status) {
    return el("span", { class: `badge status-${status}`, text: status });
  }

  function flags(saga) {
    const box = el("span", { class: "flags" });
    if (saga.needs_attention) box.append(el("span", { class: "flag attention", text: "needs attention" }));
    if (saga.stuck) box.append(el("span", { class: "flag stuck", text: "stuck" }));
    if (saga.redrive_count) box.append(el("span", { class: "flag redriven", text: `re-driven ×${saga.redrive_count}` }));
    return box;
  }

  function renderRows(items) {
    const body = $("saga-rows");
    const focusedId = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.sagaId : null;
    body.replaceChildren();
    if (!items.length) {
      body.append(el("tr", {}, el("td", { colspan: 5, class: "muted", text: "No saga matches these filters." })));
      return;
    }
    for (const saga of items) {
      const created = formatTime(saga.created_at);
      const link = el("a", { href: `#saga=${saga.id}`, "data-saga-id": saga.id, title: `saga ${saga.id}, created ${created}` }, created.slice(5));
      const row = el("tr", {
        "data-saga-id": saga.id,
        class: saga.id === state.selected ? "selected" : null,
        "aria-current": saga.id === state.selected ? "true" : null,
        onclick: (event) => {
          if (event.target.closest("a")) return;
          location.hash = `saga=${saga.id}`;
        },
      },
      el("td", {}, link),
      el("td", { text: saga.kind }),
      el("td", {}, statusBadge(saga.status), flags(saga)),
      el("td", { class: "email", title: `${saga.email || ""}${saga.user_id ? ` (user ${saga.user_id})` : ""}`, text: saga.email || "—" }),
      el("td", { class: "failed-step", title: saga.failed_step || null, text: saga.failed_step || "" }));
      body.append(row);
      if (focusedId === saga.id) link.focus();
    }
  }

  function applyFilters(event) {
    if (event) event.preventDefault();
    state.pages = [null];
    refresh();
  }

  // ---------- one saga ----------

  async function loadDetail() {
    const id = state.selected;
    if (!id) {
      $("detail-body").hidden = true;
      $("detail-empty").hidden = false;
      return;
    }
    const answer = await api("GET", `/v1/sagas/${encodeURIComponent(id)}/events`);
    if (id !== state.selected) return; // another saga was chosen meanwhile
    if (answer.status !== 200) {
      $("detail-body").hidden = true;
      $("detail-empty").hidden = false;
      $("detail-empty").textContent = answer.status === 404
        ? `No saga ${id}.`
        : errorText(answer.body, `The saga could not be loaded (${answer.status}).`);
      return;
    }
    renderDetail(answer.body);
  }

  function renderDetail(data) {
    const saga = data.saga;
    state.current = saga;
    $("detail-empty").hidden = true;
    $("detail-body").hidden = false;
    $("detail-title").textContent = `Saga ${saga.id}`;
    renderSummary(saga, data.items || []);
    renderActions(saga);
    renderTimeline(saga, data.steps || [], data.items || []);
    renderSteps(data.steps || []);
    renderHistory(data.items || []);
  }

  function renderSummary(saga, events) {
    const started = parseTime(saga.created_at);
    const ended = parseTime(saga.finished_at);
    const marked = [...events].reverse().find((e) => e.type === "attention_marked");
    const rows = [
      ["Kind", saga.kind],
      ["Status", statusBadge(saga.status)],
      ["User", saga.user_id ? `${saga.user_id} · ${saga.email || "—"}` : saga.email || "—"],
      ["Created", formatTime(saga.created_at)],
      ["Last progress", formatTime(saga.progressed_at)],
      ["Finished", saga.finished_at ? `${formatTime(saga.finished_at)} (took ${formatDuration(ended - started)})` : "not yet"],
      ["Failed step", saga.failed_step || "—"],
      ["Error", saga.error ? el("span", { class: "error-text", text: saga.error }) : "—"],
      ["Re-drives", String(saga.redrive_count ?? 0)],
      ["Flags", saga.needs_attention || saga.stuck ? flags({ ...saga, redrive_count: 0 }) : "—"],
    ];
    if (saga.needs_attention) {
      const note = saga.attention_note ?? (marked && marked.detail);
      const who = marked ? ` (${marked.actor || "?"}, ${formatTime(marked.at)})` : "";
      rows.push(["Attention note", `${note || "—"}${who}`]);
    }
    const list = $("detail-summary");
    list.replaceChildren();
    for (const [term, value] of rows) {
      list.append(el("div", {}, el("dt", { text: term }), el("dd", {}, value)));
    }
  }

  function renderActions(saga) {
    const finished = FINISHED.has(saga.status);
    const redrive = $("action-redrive");
    redrive.disabled = finished;
    redrive.title = finished
      ? `A ${saga.status} saga has nothing left to run.`
      : "Publish the saga's chain again now, as the watchdog does for a saga that stopped moving.";
    $("action-attention").disabled = Boolean(saga.needs_attention);
    $("action-clear").disabled = !saga.needs_attention;
  }

  // The bars: a step's attempt runs from step_started to step_done, step_failed or step_retried
  // (a retry mark, then the next attempt's bar); the wait in its queue is drawn lighter before it.
  // Compensations likewise from compensation_queued/started to compensation_done.
  function buildTimeline(saga, steps, events) {
    const rows = new Map();
    const row = (key, label, kind) => {
      if (!rows.has(key)) rows.set(key, { key, label, kind, segments: [], marks: [], errors: [], open: null, queuedAt: null });
      return rows.get(key);
    };
    for (const step of [...steps].sort((a, b) => a.position - b.position)) row(`step:${step.step}`, step.step, "step");
    const sagaRow = { key: "saga", label: "saga", kind: "saga", segments: [], marks: [], errors: [] };

    const close = (r, at, status, event) => {
      const seg = r.open || { start: r.queuedAt ?? at, queuedAt: r.queuedAt };
      seg.end = at;
      seg.status = status;
      seg.attempt = event.attempt;
      seg.error = event.error;
      r.segments.push(seg);
      r.open = null;
      r.queuedAt = null;
    };

    for (const event of events) {
      const at = parseTime(event.at);
      const type = event.type;
      if (!event.step || !(type.startsWith("step_") || type.startsWith("compensation_"))) {
        sagaRow.marks.push({ at, event }); // the saga's own events and the operators' actions
        continue;
      }
      const isCompensation = type.startsWith("compensation");
      const r = isCompensation
        ? row(`compensation:${event.step}`, `↩ ${event.step}`, "compensation")
        : row(`step:${event.step}`, event.step, "step");
      if (type.endsWith("_queued")) {
        if (!r.open) r.queuedAt = at;
      } else if (type.endsWith("_started")) {
        if (!r.open) r.open = { start: at, queuedAt: r.queuedAt };
      } else if (type.endsWith("_retried")) {
        close(r, at, "retried", event);
        r.marks.push({ at, event, retry: true });
        if (event.error) r.errors.push(event);
      } else if (type.endsWith("_done")) {
        close(r, at, isCompensation ? "compensation" : "done", event);
      } else if (type.endsWith("_failed")) {
        close(r, at, "failed", event);
        if (event.error) r.errors.push(event);
      } else {
        r.marks.push({ at, event }); // an event of a kind this page does not draw as a bar
      }
    }

    // The axis spans the saga's run: from its start to its end, or to now while it runs. Operator
    // actions on a finished saga come later; they sit at the right edge (and in the history).
    const times = events.map((e) => parseTime(e.at)).filter((t) => t !== null);
    const runTimes = events
      .filter((e) => e.type.startsWith("step_") || e.type.startsWith("compensation_") || e.type.startsWith("saga_"))
      .map((e) => parseTime(e.at))
      .filter((t) => t !== null);
    const start = Math.min(parseTime(saga.created_at) ?? Infinity, ...times);
    const finished = FINISHED.has(saga.status);
    const lastRun = runTimes.length ? Math.max(...runTimes) : start;
    const end = finished
      ? Math.max(lastRun, parseTime(saga.finished_at) ?? lastRun)
      : Math.max(times.length ? Math.max(...times) : start, Date.now());
    // A step's queued event is written by whoever published it, after the publish: it may come
    // after the step started, or even finished. Left over, it is a wait only for a step still to
    // run in a saga still running.
    const stepStatus = new Map(steps.map((step) => [step.step, step.status]));
    for (const r of rows.values()) {
      const waiting = r.queuedAt !== null && !finished && !SETTLED_STEPS.has(stepStatus.get(r.label));
      if (r.open || waiting) {
        const seg = r.open || { start: r.queuedAt, queuedAt: r.queuedAt, waiting: true };
        r.segments.push({ ...seg, end, status: "running", open: true });
      }
      r.open = null;
      r.queuedAt = null;
    }
    // Steps that never ran (skipped after a failure) have no bar; compensations follow the steps.
    const ordered = [sagaRow, ...[...rows.values()].filter((r) => r.kind === "step"), ...[...rows.values()].filter((r) => r.kind === "compensation")];
    return { rows: ordered, start, end: Math.max(end, start + 1) };
  }

  function renderTimeline(saga, steps, events) {
    const { rows, start, end } = buildTimeline(saga, steps, events);
    const span = end - start;
    const pos = (t) => `${Math.min(100, Math.max(0, ((t - start) / span) * 100)).toFixed(3)}%`;
    const width = (a, b) => `${Math.max(0.4, ((b - a) / span) * 100).toFixed(3)}%`;
    const box = $("timeline");
    box.replaceChildren();

    const axis = el("div", { class: "tl-row tl-axis", "aria-hidden": "true" }, el("div", { class: "tl-label" }));
    const ticks = el("div", { class: "tl-track" });
    for (let i = 0; i <= 4; i += 1) {
      const tick = el("span", { class: "tick", text: i === 0 ? formatTime(start).slice(11) : `+${formatDuration((span * i) / 4)}` });
      tick.style.left = `${i * 25}%`;
      ticks.append(tick);
    }
    axis.append(ticks);
    box.append(axis);

    for (const r of rows) {
      const track = el("div", { class: "tl-track" });
      for (const seg of r.segments) {
        const began = seg.start;
        if (seg.queuedAt !== null && seg.queuedAt !== undefined && seg.queuedAt < seg.start) {
          const wait = el("span", { class: "bar queued", title: `${r.label}: queued ${formatDuration(seg.start - seg.queuedAt)}` });
          wait.style.left = pos(seg.queuedAt);
          wait.style.width = width(seg.queuedAt, seg.start);
          track.append(wait);
        }
        const status = seg.open ? (seg.waiting ? "queued running" : "running") : seg.status;
        const what = seg.open ? (seg.waiting ? "waiting in its queue" : "running") : seg.status;
        const text = `${r.label}: ${what}${seg.attempt ? `, attempt ${seg.attempt}` : ""}, ` +
          `${formatDuration(seg.end - began)} (${formatTime(began, true)} → ${seg.open ? "now" : formatTime(seg.end, true)})` +
          `${seg.error ? ` — ${seg.error}` : ""}`;
        const bar = el("span", { class: `bar ${status}`, title: text, role: "img", "aria-label": text, "data-status": what });
        bar.style.left = pos(began);
        bar.style.width = width(began, seg.end);
        track.append(bar);
      }
      for (const mark of r.marks) {
        const e = mark.event;
        const label = EVENT_LABELS[e.type] || e.type;
        const later = mark.at > end ? " (after the saga ended)" : "";
        const text = `${label} at ${formatTime(mark.at, true)}${later}${e.attempt ? `, attempt ${e.attempt}` : ""}` +
          `${e.actor ? ` by ${e.actor}` : ""}${e.error ? ` — ${e.error}` : ""}${e.detail ? ` — ${e.detail}` : ""}`;
        const node = el("span", {
          class: `mark ${mark.retry ? "retry" : "event"} type-${e.type}`,
          title: text,
          role: "img",
          "aria-label": text,
          text: mark.retry ? "↻" : "◆",
        });
        node.style.left = pos(mark.at);
        track.append(node);
      }
      const item = el("div", { class: `tl-row tl-${r.kind}`, role: "listitem", "data-row": r.key },
        el("div", { class: "tl-label", title: r.label, text: r.label }), track);
      box.append(item);
      for (const e of r.errors) {
        const where = e.type.endsWith("_retried") ? `attempt ${e.attempt ?? "?"} retried` : "failed";
        box.append(el("div", { class: "tl-row tl-error", role: "listitem", "data-row": `${r.key}:error` },
          el("div", { class: "tl-label" }),
          el("div", { class: "tl-error-text" }, el("strong", { text: `${r.label} ${where}: ` }), e.error)));
      }
    }
  }

  function renderSteps(steps) {
    const body = $("step-rows");
    body.replaceChildren();
    for (const step of [...steps].sort((a, b) => a.position - b.position)) {
      body.append(el("tr", { "data-step": step.step },
        el("td", { text: String(step.position) }),
        el("td", { text: step.step }),
        el("td", {}, el("span", { class: `badge step-${step.status}`, text: step.status })),
        el("td", { text: String(step.attempts ?? 0) }),
        el("td", { class: "error-text", text: step.error || "" })));
    }
  }

  function renderHistory(events) {
    const body = $("history-rows");
    body.replaceChildren();
    for (const e of events) {
      const operator = e.actor && e.actor !== "watchdog";
      body.append(el("tr", { "data-event": e.type, class: operator ? "operator" : null },
        el("td", { class: "at", title: formatTime(e.at, true), text: formatTime(e.at, true).slice(11) }),
        el("td", { text: EVENT_LABELS[e.type] || e.type }),
        el("td", { text: e.step || "" }),
        el("td", { text: e.attempt ?? "" }),
        el("td", { text: e.actor || "" }),
        el("td", { class: e.error ? "error-text" : null, text: e.error || e.detail || "" })));
    }
  }

  // ---------- the operator actions ----------

  async function act(button, method, path, body, done) {
    const id = state.selected;
    if (!id) return;
    button.disabled = true;
    showMessage($("action-result"), "Working…");
    try {
      const answer = await api(method, `/v1/sagas/${encodeURIComponent(id)}${path}`, body);
      if (answer.status >= 200 && answer.status < 300) {
        showMessage($("action-result"), done, "ok");
      } else {
        showMessage($("action-result"), errorText(answer.body, `Refused (${answer.status}).`), "error");
      }
    } catch (err) {
      if (!(err instanceof SignedOut)) showMessage($("action-result"), `Failed: ${err.message}`, "error");
      return;
    }
    await refresh();
  }

  // ---------- refreshing ----------

  // One refresh at a time; asked for during one, it runs once more after it (an action's result).
  function refresh() {
    if (!session.access) return Promise.resolve();
    if (state.running) {
      state.again = true;
      return state.running;
    }
    state.running = (async () => {
      do {
        state.again = false;
        try {
          await Promise.all([loadList(), loadDetail()]);
          $("refreshed").textContent = `updated ${formatTime(Date.now()).slice(11)}`;
        } catch (err) {
          if (err instanceof SignedOut) return;
          showMessage($("list-message"), `The server could not be reached (${err.message}).`, "error");
        }
      } while (state.again && session.access);
    })().finally(() => {
      state.running = null;
    });
    return state.running;
  }

  function selectFromHash() {
    const match = /^#saga=([0-9a-fA-F-]{36})$/.exec(location.hash);
    const id = match ? match[1] : null;
    if (id === state.selected) return;
    state.selected = id;
    showMessage($("action-result"), "");
    for (const row of document.querySelectorAll("#saga-rows tr[data-saga-id]")) {
      const chosen = row.dataset.sagaId === id;
      row.classList.toggle("selected", chosen);
      if (chosen) row.setAttribute("aria-current", "true");
      else row.removeAttribute("aria-current");
    }
    if (session.access) loadDetail().catch(() => {});
  }

  async function start() {
    showConsole();
    state.selected = null;
    selectFromHash();
    await refresh();
  }

  function init() {
    $("login-form").addEventListener("submit", logIn);
    $("logout").addEventListener("click", logOut);
    $("filters").addEventListener("submit", applyFilters);
    $("filters").addEventListener("reset", () => setTimeout(applyFilters, 0));
    $("page-next").addEventListener("click", () => {
      if (!state.nextCursor) return;
      state.pages.push(state.nextCursor);
      refresh();
    });
    $("page-prev").addEventListener("click", () => {
      if (state.pages.length > 1) state.pages.pop();
      refresh();
    });
    $("page-first").addEventListener("click", () => {
      state.pages = [null];
      refresh();
    });
    $("refresh-toggle").addEventListener("click", (event) => {
      state.paused = !state.paused;
      event.currentTarget.setAttribute("aria-pressed", String(state.paused));
      event.currentTarget.textContent = state.paused ? "Resume refresh" : "Pause refresh";
      if (!state.paused) refresh();
    });
    $("action-redrive").addEventListener("click", (event) =>
      act(event.currentTarget, "POST", "/redrive", undefined, "Re-driven: the saga's chain was published again."));
    $("action-attention").addEventListener("click", (event) => {
      const note = $("attention-note").value.trim();
      act(event.currentTarget, "POST", "/attention", note ? { note } : {}, "Marked as needing attention.").then(() => {
        $("attention-note").value = "";
      });
    });
    $("action-clear").addEventListener("click", (event) =>
      act(event.currentTarget, "DELETE", "/attention", undefined, "Needs attention cleared."));
    window.addEventListener("hashchange", selectFromHash);
    setInterval(() => {
      if (!state.paused && !document.hidden && session.access) refresh();
    }, REFRESH_MS);

    if (session.access) start();
    else showLogin("");
  }

  init();
})();
