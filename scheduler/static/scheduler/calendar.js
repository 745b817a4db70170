/* The member calendar and the scheduling board: FullCalendar fed by the REST API (/api/v1/).
 *
 * Every read and write goes through the API with the browser's session (CSRF token in X-CSRFToken);
 * the server stays the authority (permissions, the double-booking guard, If-Match versions).
 */
(function () {
  "use strict";

  const API = "/api/v1";
  const root = document.getElementById("calendar-app");
  if (!root) return;
  const MODE = root.dataset.mode; // "member" | "board"
  const BOARD = MODE === "board";
  const IS_ADMIN = root.dataset.admin === "true";
  const SOURCE_LABELS = JSON.parse(document.getElementById("source-labels").textContent);
  const STATUS_LABELS = JSON.parse(document.getElementById("status-labels").textContent);
  const KIND_LABELS = {
    overlap: "Overlap",
    outside_hours: "Outside working hours",
    external_busy: "External busy time",
    patient_overlap: "Same patient twice",
    duplicate: "Duplicate from two sources",
  };
  const OCCUPYING = new Set(["scheduled", "confirmed"]);
  const DateTime = luxon.DateTime;

  const state = {
    therapists: new Map(), // id -> {id, name, timezone}
    services: new Map(), // id -> {id, name, durations}
    offices: new Map(),
    appointments: new Map(), // id -> appointment row of the last calendar load
    conflicts: [], // open conflict markers of the last calendar load
    range: null,
    seq: 0, // events requests made; data-requested / data-loaded (painted) let tests wait for a load
  };
  if (!BOARD) {
    const id = Number(root.dataset.therapist);
    state.therapists.set(id, { id, name: root.dataset.therapistName, timezone: root.dataset.timezone });
  }

  // --- API ------------------------------------------------------------------------------------------

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || `Request failed (${status}).`);
      this.status = status;
      this.code = body && body.error && body.error.code;
      this.details = (body && body.error && body.error.details) || {};
    }
  }

  async function api(method, path, body, headers) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
    if (method !== "GET") init.headers["X-CSRFToken"] = csrfToken();
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(API + path, init);
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  async function listAll(path) {
    const data = await api("GET", `${path}${path.includes("?") ? "&" : "?"}limit=1000`);
    return data.results;
  }

  function idempotencyKey() {
    return window.crypto && crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
  }

  // --- formatting -----------------------------------------------------------------------------------

  function zoneOf(therapistId) {
    const t = state.therapists.get(therapistId);
    return t ? t.timezone : "UTC";
  }

  function localRange(startIso, endIso, zone) {
    const s = DateTime.fromISO(startIso, { zone });
    const e = DateTime.fromISO(endIso, { zone });
    const day = s.toFormat("ccc d LLL yyyy");
    return `${day}, ${s.toFormat("HH:mm")}–${e.toFormat("HH:mm")} (${zone})`;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function say(message) {
    document.getElementById("status-line").textContent = message;
  }

  function appointmentTitle(a) {
    const service = a.service && state.services.get(a.service);
    const what = service ? service.name : a.type.replace("_", " ");
    if (!BOARD) return what;
    const t = state.therapists.get(a.therapist);
    return `${t ? t.name : "Therapist " + a.therapist} · ${what}`;
  }

  // --- dialogs --------------------------------------------------------------------------------------

  for (const button of document.querySelectorAll("dialog [data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }

  function openDialog(id) {
    const dialog = document.getElementById(id);
    if (!dialog.open) dialog.showModal();
    return dialog;
  }

  function showDetails(event) {
    const props = event.extendedProps;
    const body = document.getElementById("details-body");
    const title = document.getElementById("details-title");
    body.replaceChildren();
    if (props.kind === "busy") {
      const b = props.block;
      title.textContent = "Busy";
      body.append(
        el(
          "dl",
          { class: "facts" },
          el("dt", { text: "When" }),
          el("dd", { text: localRange(b.start, b.end, zoneOf(b.therapist)) }),
          el("dt", { text: "From" }),
          el("dd", { text: SOURCE_LABELS[b.source_system] || b.source_system }),
        ),
        el("p", { text: "Busy time on a connected calendar; the hub keeps no details of it." }),
      );
      openDialog("details-dialog");
      return;
    }
    const a = props.appt;
    const service = a.service && state.services.get(a.service);
    title.textContent = `Appointment ${a.id}`;
    const conflicts = props.conflicts;
    const facts = el(
      "dl",
      { class: "facts" },
      el("dt", { text: "When" }),
      el("dd", { "data-field": "when", text: localRange(a.start, a.end, zoneOf(a.therapist)) }),
      BOARD && el("dt", { text: "Therapist" }),
      BOARD && el("dd", { text: (state.therapists.get(a.therapist) || {}).name || a.therapist }),
      el("dt", { text: "Status" }),
      el("dd", { "data-field": "status", text: STATUS_LABELS[a.status] || a.status }),
      el("dt", { text: "Source" }),
      el("dd", { "data-field": "source", text: SOURCE_LABELS[a.source_system] || a.source_system }),
      service && el("dt", { text: "Service" }),
      service && el("dd", { text: service.name }),
      el("dt", { text: "Conflicts" }),
      el(
        "dd",
        { "data-field": "conflicts" },
        conflicts.length
          ? conflicts.map((c) =>
              el(
                "div",
                {},
                el("span", { class: "flag", text: "⚠ " + (KIND_LABELS[c.kind] || c.kind) }),
                " ",
                BOARD
                  ? el("button", {
                      type: "button",
                      class: "resolve-open",
                      "data-conflict": c.id,
                      text: `Resolve conflict ${c.id}`,
                      onclick: () => openConflict(c.id),
                    })
                  : `conflict ${c.id} (the front desk resolves it)`,
              ),
            )
          : "None",
      ),
    );
    body.append(
      facts,
      el("p", {}, el("a", { class: "button", href: `${API}/appointments/${a.id}/ical`, download: `appointment-${a.id}.ics`, text: "Add to my calendar (.ics)" })),
    );
    if (BOARD && a.source_system === "hub" && OCCUPYING.has(a.status)) body.append(rescheduleForm(a));
    openDialog("details-dialog");
  }

  function rescheduleForm(a) {
    // Rescheduling without a mouse: the same checks and dialog as dragging.
    const zone = zoneOf(a.therapist);
    const input = el("input", {
      type: "datetime-local",
      id: "reschedule-start",
      required: true,
      value: DateTime.fromISO(a.start, { zone }).toFormat("yyyy-LL-dd'T'HH:mm"),
    });
    const form = el(
      "form",
      { class: "reschedule" },
      el("label", { for: "reschedule-start", text: `Reschedule to (${zone})` }),
      " ",
      input,
      " ",
      el("button", { type: "submit", text: "Reschedule" }),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const start = DateTime.fromISO(input.value, { zone });
      if (!start.isValid) return;
      const length = Date.parse(a.end) - Date.parse(a.start);
      document.getElementById("details-dialog").close();
      proposeMove({ appt: a, start: start.toISO(), end: start.plus({ milliseconds: length }).toISO() });
    });
    return form;
  }

  // --- calendar ---------------------------------------------------------------------------------------

  const filters = {
    therapist: document.getElementById("f-therapist"),
    office: document.getElementById("f-office"),
    source_system: document.getElementById("f-source"),
    status: document.getElementById("f-status"),
  };
  // The filters apply as they change; Enter must not submit (and reload) the form. (A listener, not an
  // onsubmit attribute: the Content-Security-Policy allows no inline handlers.)
  document.getElementById("filters")?.addEventListener("submit", (event) => event.preventDefault());

  function filterParams() {
    const params = new URLSearchParams();
    if (!BOARD) return params;
    for (const [name, select] of Object.entries(filters)) {
      if (select && select.value) params.set(name, select.value);
    }
    return params;
  }

  function toEvents(data) {
    const byAppointment = new Map();
    for (const c of data.conflicts) {
      for (const id of c.appointment_ids) {
        if (!byAppointment.has(id)) byAppointment.set(id, []);
        byAppointment.get(id).push(c);
      }
    }
    state.appointments = new Map(data.appointments.map((a) => [a.id, a]));
    state.conflicts = data.conflicts;
    const events = data.appointments.map((a) => {
      const conflicts = byAppointment.get(a.id) || [];
      return {
        id: `a${a.id}`,
        start: a.start,
        end: a.end,
        title: appointmentTitle(a),
        classNames: ["appt", `st-${a.status}`, conflicts.length ? "has-conflict" : ""].filter(Boolean),
        startEditable: BOARD && a.source_system === "hub" && OCCUPYING.has(a.status),
        durationEditable: false,
        extendedProps: { kind: "appointment", appt: a, conflicts },
      };
    });
    for (const b of data.busy_blocks) {
      events.push({
        id: `b${b.id}`,
        start: b.start,
        end: b.end,
        title: "Busy",
        classNames: ["busy"],
        editable: false,
        extendedProps: { kind: "busy", block: b },
      });
    }
    return events;
  }

  function renderEvent(arg) {
    const props = arg.event.extendedProps;
    if (!props.kind) return true; // the selection mirror: FullCalendar's own rendering
    const head = [];
    if (props.kind === "appointment" && props.conflicts.length) {
      head.push(el("span", { class: "flag", title: "In an open conflict", text: "⚠ Conflict" }));
    }
    if (arg.timeText) head.push(el("span", { class: "ev-time", text: arg.timeText }));
    const parts = [el("span", { class: "ev-head" }, head), el("span", { class: "ev-title", text: arg.event.title })];
    if (props.kind === "appointment") {
      parts.push(el("span", { class: "ev-status", text: STATUS_LABELS[props.appt.status] || props.appt.status }));
    }
    return { domNodes: [el("div", { class: "ev" }, parts)] };
  }

  function labelEvent(arg) {
    // Keyboard and screen-reader access: each event is a focusable button that opens its details.
    const props = arg.event.extendedProps;
    if (!props.kind) return; // the selection mirror
    const node = arg.el;
    node.setAttribute("tabindex", "0");
    node.setAttribute("role", "button");
    if (props.kind === "appointment") {
      const a = props.appt;
      node.dataset.appointment = a.id;
      node.dataset.status = a.status;
      const flag = props.conflicts.length ? ", in an open conflict" : "";
      node.setAttribute(
        "aria-label",
        `${arg.event.title}, ${localRange(a.start, a.end, zoneOf(a.therapist))}, ${STATUS_LABELS[a.status]}${flag}`,
      );
    } else {
      node.dataset.busy = props.block.id;
      node.setAttribute("aria-label", `Busy, ${localRange(props.block.start, props.block.end, zoneOf(props.block.therapist))}`);
    }
    node.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        showDetails(arg.event);
      }
    });
  }

  // Reference data (names, services, offices) comes first, so the first painted load is complete: every
  // events request waits for it, and nothing is fetched twice.
  function loadReference() {
    if (!BOARD) {
      return listAll("/services/").then((services) => {
        for (const s of services) state.services.set(s.id, s);
      });
    }
    const zoneSelect = document.getElementById("f-timezone");
    return Promise.all([listAll("/therapists/"), listAll("/services/"), listAll("/offices/")]).then(
      ([therapists, services, offices]) => {
        const zones = new Set([zoneSelect.value, "UTC"]);
        for (const t of therapists) {
          state.therapists.set(t.id, t);
          filters.therapist.append(el("option", { value: t.id, text: t.name }));
          document.getElementById("book-therapist").append(el("option", { value: t.id, text: `${t.name} (${t.timezone})` }));
          zones.add(t.timezone);
        }
        for (const s of services) {
          state.services.set(s.id, s);
          document.getElementById("book-service").append(el("option", { value: s.id, text: `${s.name} (${s.durations[0]} min)` }));
        }
        for (const o of offices) {
          state.offices.set(o.id, o);
          filters.office.append(el("option", { value: o.id, text: o.name }));
          zones.add(o.timezone);
        }
        for (const z of [...zones].sort()) {
          if (z !== zoneSelect.value) zoneSelect.append(el("option", { value: z, text: z }));
        }
      },
    );
  }
  const referenceReady = loadReference();

  const skeleton = document.getElementById("skeleton");
  const narrow = window.matchMedia("(max-width: 575px)").matches;

  const calendar = new FullCalendar.Calendar(document.getElementById("calendar"), {
    plugins: [FullCalendar.Luxon3.default || FullCalendar.Luxon3],
    timeZone: root.dataset.timezone,
    initialView: narrow ? "timeGridDay" : "timeGridWeek",
    // ?date=YYYY-MM-DD opens on that date (links from elsewhere, tests); otherwise today.
    initialDate: new URLSearchParams(window.location.search).get("date") || undefined,
    views: { dayGridMonth: { dayMaxEvents: 6 } },
    headerToolbar: {
      left: "prev,next today",
      center: "title",
      right: "dayGridMonth,timeGridWeek,timeGridDay",
    },
    buttonText: { today: "Today", month: "Month", week: "Week", day: "Day" },
    buttonHints: { prev: "Previous $0", next: "Next $0", today: "Go to today" },
    height: "auto",
    nowIndicator: true,
    slotMinTime: "07:00:00",
    slotMaxTime: "20:00:00",
    scrollTime: "08:00:00",
    allDaySlot: false,
    firstDay: 1,
    eventTimeFormat: { hour: "2-digit", minute: "2-digit", hour12: false },
    slotLabelFormat: { hour: "2-digit", minute: "2-digit", hour12: false },
    selectable: BOARD,
    selectMirror: BOARD,
    selectAllow: (info) => !info.allDay, // book from the week or day grid, where the slot has a time
    editable: BOARD,
    eventDurationEditable: false,
    loading(isLoading) {
      skeleton.hidden = !isLoading;
      document.getElementById("calendar").setAttribute("aria-busy", isLoading ? "true" : "false");
    },
    events(info, success, failure) {
      const params = filterParams();
      params.set("start", info.startStr);
      params.set("end", info.endStr);
      state.range = { start: info.startStr, end: info.endStr };
      const seq = ++state.seq;
      root.dataset.requested = String(seq);
      Promise.all([api("GET", `/calendar/?${params}`), referenceReady])
        .then(([data]) => {
          success(toEvents(data));
          const panel = BOARD ? renderConflictPanel() : Promise.resolve();
          // A load counter for tests and assistive tooling, bumped once the new events are painted.
          panel.then(() =>
            requestAnimationFrame(() =>
              requestAnimationFrame(() => {
                if (seq !== state.seq) return; // superseded: FullCalendar drops a stale fetch's events
                root.dataset.loaded = String(seq);
                root.dataset.ready = "true";
              }),
            ),
          );
        })
        .catch((err) => {
          say(`Could not load the calendar: ${err.message}`);
          failure(err);
        });
    },
    eventContent: renderEvent,
    eventDidMount: labelEvent,
    eventClick(info) {
      info.jsEvent.preventDefault();
      showDetails(info.event);
    },
    select: BOARD ? (info) => openBooking(info) : undefined,
    eventDrop: BOARD ? (info) => onDrop(info) : undefined,
  });
  calendar.render();
  window.hubCalendar = calendar; // for tests and the console

  function refresh() {
    calendar.refetchEvents();
  }

  // --- member page: connections ---------------------------------------------------------------------

  async function loadConnections() {
    const list = document.getElementById("connection-list");
    try {
      const connections = await listAll("/connections/");
      list.replaceChildren();
      const google = connections.filter((c) => c.platform === "google");
      for (const c of connections) {
        const bad = c.status !== "active";
        list.append(
          el(
            "li",
            { "data-platform": c.platform },
            `${SOURCE_LABELS[c.platform] || c.platform}: `,
            el("span", { class: `conn-state${bad ? " bad" : ""}`, text: c.status.replace("_", " ") }),
            c.last_synced_at ? ` · last sync ${DateTime.fromISO(c.last_synced_at).toRelative()}` : "",
            c.platform === "google"
              ? [" · ", el("a", { href: "/integrations/google/connect/", text: "Reconnect Google Calendar" })]
              : "",
          ),
        );
      }
      if (!google.length) {
        list.append(
          el("li", { "data-platform": "google" }, "Google Calendar: not connected · ", el("a", { href: "/integrations/google/connect/", text: "Connect Google Calendar" })),
        );
      }
    } catch (err) {
      list.replaceChildren(el("li", { class: "error", text: `Could not load connections: ${err.message}` }));
    }
  }

  if (!BOARD) {
    loadConnections();
    return;
  }

  // --- board: reference data and filters --------------------------------------------------------------

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  const refreshDebounced = debounce(refresh, 300);
  for (const select of Object.values(filters)) select.addEventListener("change", refreshDebounced);
  const zoneSelect = document.getElementById("f-timezone");
  zoneSelect.addEventListener("change", () => calendar.setOption("timeZone", zoneSelect.value));

  // --- board: booking -----------------------------------------------------------------------------------

  const bookForm = document.getElementById("book-form");

  function bookingStart() {
    // The date and time fields are wall-clock time in the board's zone.
    const zone = calendar.getOption("timeZone");
    if (!bookForm.date.value || !bookForm.time.value) return null;
    const start = DateTime.fromISO(`${bookForm.date.value}T${bookForm.time.value}`, { zone });
    return start.isValid ? start : null;
  }

  function describeBooking() {
    const start = bookingStart();
    const zone = calendar.getOption("timeZone");
    document.getElementById("book-when").textContent = start
      ? `From ${start.toFormat("ccc d LLL yyyy, HH:mm")} (${zone}); the service sets the length.`
      : "Choose a date and a start time.";
  }

  function openBooking(info) {
    const error = document.getElementById("book-error");
    error.hidden = true;
    error.textContent = "";
    const zone = calendar.getOption("timeZone");
    for (const node of document.querySelectorAll(".book-zone")) node.textContent = zone;
    if (filters.therapist.value) document.getElementById("book-therapist").value = filters.therapist.value;
    const start = info ? DateTime.fromISO(info.startStr, { zone }) : null;
    bookForm.date.value = start ? start.toISODate() : "";
    bookForm.time.value = start ? start.toFormat("HH:mm") : "";
    describeBooking();
    openDialog("book-dialog");
    document.getElementById("book-therapist").focus();
  }

  bookForm.date.addEventListener("change", describeBooking);
  bookForm.time.addEventListener("change", describeBooking);
  document.getElementById("new-booking").addEventListener("click", () => openBooking(null));
  document.getElementById("book-dialog").addEventListener("close", () => calendar.unselect());

  document.getElementById("book-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    const error = document.getElementById("book-error");
    const service = state.services.get(Number(form.service.value));
    const start = bookingStart();
    if (!start || !service) {
      error.textContent = "Choose a service, a date and a start time.";
      error.hidden = false;
      return;
    }
    const body = {
      therapist: Number(form.therapist.value),
      service: service.id,
      start: start.toISO({ suppressMilliseconds: true }),
      end: start.plus({ minutes: service.durations[0] }).toISO({ suppressMilliseconds: true }),
    };
    if (filters.office.value) body.office = Number(filters.office.value); // booked at the office in view
    if (form.patient_ref.value.trim()) body.patient_ref = form.patient_ref.value.trim();
    if (form.override_reason && form.override_reason.value.trim()) body.override_reason = form.override_reason.value.trim();
    const submit = document.getElementById("book-submit");
    submit.disabled = true;
    try {
      const created = await api("POST", "/appointments/", body, { "Idempotency-Key": idempotencyKey() });
      document.getElementById("book-dialog").close();
      form.reset();
      say(`Booked appointment ${created.id}.`);
      refresh();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });

  // --- board: drag to reschedule ------------------------------------------------------------------------

  function overlaps(aStart, aEnd, bStart, bEnd) {
    return aStart < bEnd && bStart < aEnd;
  }

  function localClashes(appt, startIso, endIso) {
    // What the board already shows for this therapist at the new time. The server re-checks (409).
    const s = DateTime.fromISO(startIso).toMillis();
    const e = DateTime.fromISO(endIso).toMillis();
    const found = { appointments: [], blocks: [] };
    for (const ev of calendar.getEvents()) {
      const p = ev.extendedProps;
      if (p.kind === "appointment") {
        const o = p.appt;
        if (o.id === appt.id || o.therapist !== appt.therapist || !OCCUPYING.has(o.status)) continue;
        if (overlaps(s, e, Date.parse(o.start), Date.parse(o.end))) found.appointments.push(o);
      } else if (p.kind === "busy") {
        const b = p.block;
        if (b.therapist === appt.therapist && overlaps(s, e, Date.parse(b.start), Date.parse(b.end))) found.blocks.push(b);
      }
    }
    return found;
  }

  let pendingMove = null;

  async function moveAppointment(appt, startIso, endIso, extra) {
    const body = { start: startIso, end: endIso, ...extra };
    return api("PATCH", `/appointments/${appt.id}/`, body, { "If-Match": `"${appt.id}-v${appt.version}"` });
  }

  function showClash(move, clashes, message) {
    pendingMove = move;
    const zone = zoneOf(move.appt.therapist);
    document.getElementById("clash-what").textContent =
      message || `Moving appointment ${move.appt.id} to ${localRange(move.start, move.end, zone)} clashes with:`;
    const list = document.getElementById("clash-list");
    list.replaceChildren(
      ...clashes.appointments.map((o) =>
        el("li", { "data-appointment": o.id, text: `Appointment ${o.id} (${STATUS_LABELS[o.status] || o.status}, ${SOURCE_LABELS[o.source_system] || o.source_system}), ${localRange(o.start, o.end, zone)}` }),
      ),
      ...clashes.blocks.map((b) =>
        el("li", { "data-busy": b.id, text: `Busy on ${SOURCE_LABELS[b.source_system] || b.source_system}, ${localRange(b.start, b.end, zone)}` }),
      ),
    );
    const onlyBusy = clashes.appointments.length === 0;
    document.getElementById("clash-anyway").hidden = !onlyBusy;
    document.getElementById("clash-override").hidden = onlyBusy || !IS_ADMIN;
    document.getElementById("clash-reason-row").hidden = onlyBusy || !IS_ADMIN;
    document.getElementById("clash-error").hidden = true;
    openDialog("clash-dialog");
    document.getElementById("clash-keep").focus();
  }

  function clashFromServer(move, err) {
    const ids = err.details.conflicting_appointment_ids || [];
    const appointments = ids.map(
      (id) => state.appointments.get(id) || { id, status: "scheduled", source_system: "hub", start: move.start, end: move.end },
    );
    showClash(move, { appointments, blocks: [] }, err.message);
  }

  async function onDrop(info) {
    const appt = info.event.extendedProps.appt;
    const move = { appt, start: info.event.startStr, end: info.event.endStr };
    // Nothing changes until a choice is made: put the event back first, then ask.
    info.revert();
    await proposeMove(move);
  }

  // Dragging and the details dialog's "Reschedule" form (the keyboard's way) both end here.
  async function proposeMove(move) {
    const appt = move.appt;
    const clashes = localClashes(appt, move.start, move.end);
    if (clashes.appointments.length || clashes.blocks.length) {
      showClash(move, clashes);
      return;
    }
    try {
      await moveAppointment(appt, move.start, move.end);
      say(`Moved appointment ${appt.id} to ${localRange(move.start, move.end, zoneOf(appt.therapist))}.`);
      refresh();
    } catch (err) {
      if (err.status === 409) clashFromServer(move, err);
      else {
        say(`Not moved: ${err.message}`);
        if (err.status === 412) refresh();
      }
    }
  }

  async function confirmMove(extra) {
    const move = pendingMove;
    const error = document.getElementById("clash-error");
    try {
      await moveAppointment(move.appt, move.start, move.end, extra);
      document.getElementById("clash-dialog").close();
      say(`Moved appointment ${move.appt.id}; the clash is listed under open conflicts.`);
      refresh();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  }

  document.getElementById("clash-keep").addEventListener("click", () => {
    document.getElementById("clash-dialog").close();
    say("Kept the original time.");
  });
  document.getElementById("clash-anyway").addEventListener("click", () => confirmMove({}));
  document.getElementById("clash-override").addEventListener("click", () => {
    const reason = document.getElementById("clash-reason").value.trim();
    if (!reason) {
      const error = document.getElementById("clash-error");
      error.textContent = "An override needs a reason.";
      error.hidden = false;
      return;
    }
    confirmMove({ override_reason: reason });
  });
  document.getElementById("clash-dialog").addEventListener("close", () => {
    pendingMove = null;
  });

  // --- board: conflicts panel -------------------------------------------------------------------------

  async function fetchAppointment(id) {
    if (state.appointments.has(id)) return state.appointments.get(id);
    try {
      return await api("GET", `/appointments/${id}/`);
    } catch (err) {
      return { id, missing: true };
    }
  }

  async function resolve(conflict, action, appointmentId, note) {
    const body = { action, note: note || "" };
    if (appointmentId) body.appointment = appointmentId;
    await api("POST", `/conflicts/${conflict.id}/resolve/`, body, { "Idempotency-Key": idempotencyKey() });
  }

  async function conflictCard(conflict) {
    const appointments = await Promise.all(conflict.appointment_ids.map(fetchAppointment));
    const error = el("p", { class: "error", role: "alert", hidden: true });
    const run = async (action, appointmentId, note) => {
      try {
        await resolve(conflict, action, appointmentId, note);
        say(`Conflict ${conflict.id} resolved (${action}).`);
        const dialog = document.getElementById("conflict-dialog");
        if (dialog.open) dialog.close();
        refresh();
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      }
    };
    const sides = appointments.map((a) => {
      if (a.missing) return el("div", { class: "side", text: `Appointment ${a.id}` });
      const zone = zoneOf(a.therapist);
      const movable = a.source_system === "hub" && OCCUPYING.has(a.status);
      return el(
        "div",
        { class: "side", "data-appointment": a.id },
        el("p", {}, el("strong", { text: `Appointment ${a.id}` })),
        el("p", { text: localRange(a.start, a.end, zone) }),
        el("p", { text: `${(state.therapists.get(a.therapist) || {}).name || ""}` }),
        el("p", { text: `${SOURCE_LABELS[a.source_system] || a.source_system} · ${STATUS_LABELS[a.status] || a.status}` }),
        movable
          ? el("button", { type: "button", class: "danger", "data-action": "cancel", text: "Cancel this one", onclick: () => run("cancel", a.id) })
          : el("p", { class: "tz", text: `Managed in ${SOURCE_LABELS[a.source_system] || a.source_system}` }),
        conflict.kind === "duplicate"
          ? el("button", { type: "button", "data-action": "merge", text: "Keep this, merge the other", onclick: () => run("merge", a.id) })
          : null,
        el("button", {
          type: "button",
          "data-action": "show",
          text: "Show",
          onclick: () => {
            document.getElementById("conflict-dialog").close();
            calendar.gotoDate(a.start);
          },
        }),
      );
    });
    for (const blockId of conflict.busy_block_ids || []) {
      sides.push(el("div", { class: "side busy-side", "data-busy": blockId }, el("p", {}, el("strong", { text: "External busy time" }))));
    }
    const note = el("input", { "aria-label": `Reason for conflict ${conflict.id}`, placeholder: "Reason (needed to accept)" });
    return el(
      "section",
      { class: "conflict-card", "data-conflict": conflict.id, "aria-label": `Conflict ${conflict.id}` },
      el("h3", { text: `⚠ ${KIND_LABELS[conflict.kind] || conflict.kind} · conflict ${conflict.id}` }),
      el("div", { class: "sides" }, sides),
      el(
        "div",
        { class: "conflict-note" },
        note,
        el("button", { type: "button", "data-action": "accept", text: "Accept", onclick: () => run("accept", null, note.value) }),
        el("button", { type: "button", "data-action": "dismiss", text: "Dismiss", onclick: () => run("dismiss", null, note.value) }),
      ),
      error,
    );
  }

  async function renderConflictPanel() {
    const params = filterParams();
    params.delete("status"); // appointment status, not conflict status
    params.set("status", "open");
    if (state.range) {
      params.set("start", state.range.start);
      params.set("end", state.range.end);
    }
    const list = document.getElementById("conflict-list");
    try {
      const conflicts = await listAll(`/conflicts/?${params}`);
      const cards = await Promise.all(conflicts.map(conflictCard));
      document.getElementById("conflict-count").textContent = `(${conflicts.length} in view)`;
      list.replaceChildren(...(cards.length ? cards : [el("p", { text: "No open conflicts in this range." })]));
    } catch (err) {
      list.replaceChildren(el("p", { class: "error", text: `Could not load conflicts: ${err.message}` }));
    }
  }

  async function openConflict(id) {
    document.getElementById("details-dialog").close();
    const body = document.getElementById("conflict-dialog-body");
    try {
      const conflict = await api("GET", `/conflicts/${id}/`);
      body.replaceChildren(await conflictCard(conflict));
    } catch (err) {
      body.replaceChildren(el("p", { class: "error", text: err.message }));
    }
    openDialog("conflict-dialog");
  }
})();
