// The console of the local server: everything it shows comes from the
// emulator admin API (/emulator/v1/*), with the admin key the user types.
// The key stays in this tab (sessionStorage); nothing leaves the machine.

const KEY_STORE = "auxia-console-admin-key";
const REFRESH_MS = 2000;
/** How long a filter's text stays unchanged before it is listed by (one listing, not a keystroke's). */
const SETTLE_MS = 300;
/** How long an admin call may take before the console gives up on it (and refreshes again). */
const CALL_TIMEOUT_MS = 60_000;
/** How many interactions the feed shows: the newest. */
const FEED_SIZE = 200;
/** How many calls a refresh of the feed makes at most, following short pages. */
const FEED_CALLS = 10;
const state = { key: "", projects: [], timer: null, explained: null };

const $ = (selector) => document.querySelector(selector);

async function admin(method, body = {}) {
  const answer = await fetch(`/emulator/v1/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-admin-key": state.key },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  const text = await answer.text();
  const json = text ? JSON.parse(text) : {};
  if (!answer.ok) {
    throw new Error(json.message || `${method}: HTTP ${answer.status}`);
  }
  return json;
}

function cell(row, content) {
  const td = document.createElement("td");
  if (content instanceof Node) {
    td.append(content);
  } else {
    td.textContent = content ?? "";
  }
  row.append(td);
  return td;
}

function fill(table, rows, render) {
  const body = table.querySelector("tbody");
  const fresh = document.createElement("tbody");
  for (const item of rows) {
    const row = document.createElement("tr");
    render(row, item);
    fresh.append(row);
  }
  body.replaceWith(fresh);
}

function showError(error) {
  $("#status").textContent = error ? String(error.message || error) : "";
  if (error) {
    clearVerdicts(); // what they said may no longer hold
  }
}

// The clock.

async function refreshClock(clock) {
  const shown = clock || (await admin("GetClock")).clock;
  $("#clock-now").textContent = `clock: ${shown.now}${shown.frozen ? " (frozen)" : ""}`;
  return shown;
}

async function setClock(change) {
  await refreshClock((await admin("SetClock", change)).clock);
  await refresh();
}

// Projects and their treatments.

function describeField(field) {
  const params = field.dataFieldParams || {};
  if (params.userAttributeDataFieldParams) {
    return `user attribute ${params.userAttributeDataFieldParams.propertyName}`;
  }
  const metric = params.treatmentDataFieldParams || params.eventDataFieldParams || {};
  const what = metric.treatmentInteractionType || metric.eventSchemaName || "?";
  const of = metric.treatmentId ? ` of ${metric.treatmentId}` : "";
  const window = metric.dailyCountAggregation ? ` in ${metric.dailyCountAggregation.windowName}` : "";
  return `${what}${of}${window}`;
}

function liveVersion(treatment) {
  const versions = treatment.versions || [];
  for (let index = versions.length - 1; index >= 0; index -= 1) {
    if (versions[index].status === "LIVE") {
      return [index, versions[index]];
    }
  }
  return [-1, null];
}

function renderTreatments() {
  const project = state.projects.find((p) => p.projectId === $("#project").value);
  if (!project) {
    fill($("#treatments"), [], () => {});
    return;
  }
  const fields = new Map((project.dataFields || []).map((f) => [String(f.dataFieldId), f]));
  fill($("#treatments"), project.treatments || [], (row, treatment) => {
    const [index, version] = liveVersion(treatment);
    const type = treatment.treatmentType || {};
    const removed = new Set(((version || {}).removedSurfaces || {}).surfaces?.map((s) => s.name) || []);
    const surfaces = (type.surfaces || []).map((s) => s.name).filter((name) => !removed.has(name));
    const rules = (((version || {}).eligibilityRules || {}).rules || []).map((rule) => {
      const field = fields.get(String(rule.dataFieldId));
      const named = field ? describeField(field) : `data field ${rule.dataFieldId}`;
      return `${named} ${rule.condition} ${rule.rhsValue ?? ""}`;
    });
    cell(row, treatment.treatmentId);
    cell(row, treatment.name);
    cell(row, type.name);
    cell(row, treatment.status);
    cell(row, index < 0 ? "none" : `#${index + 1}`);
    cell(row, version ? surfaces.join(", ") : "");
    cell(row, rules.join("; "));
    cell(row, (treatment.mutualExclusionGroup || {}).name || "");
  });
  const surfaces = new Set();
  for (const type of project.treatmentTypes || []) {
    for (const surface of type.surfaces || []) {
      surfaces.add(surface.name);
    }
  }
  const select = $("#why-surface");
  const chosen = select.value;
  select.replaceChildren(...[...surfaces].sort().map((name) => new Option(name, name)));
  if (surfaces.has(chosen)) {
    select.value = chosen;
  }
}

async function refreshProjects() {
  state.projects = (await admin("ListProjects")).projects || [];
  const select = $("#project");
  const chosen = select.value;
  select.replaceChildren(...state.projects.map((p) => new Option(p.projectId, p.projectId)));
  const known = state.projects.map((p) => p.projectId);
  select.value = known.includes(chosen) ? chosen : known.includes("PROJECT_ID") ? "PROJECT_ID" : known[0] || "";
  renderTreatments();
}

// Why (not)?

function attributes(text) {
  return text
    .split(/\s+/)
    .filter(Boolean)
    .map((pair) => {
      const [key, ...rest] = pair.split("=");
      const value = rest.join("=");
      if (value === "true" || value === "false") {
        return { key, boolValue: value === "true" };
      }
      if (/^-?\d+$/.test(value)) {
        return { key, integerValue: value };
      }
      return { key, stringValue: value };
    });
}

// Served first on each surface, then the candidates not served, then the
// treatments that were not candidates; surfaces in the order asked.
const NOT_CANDIDATES = new Set(["NOT_LIVE", "NOT_ON_SURFACE", "NO_CONTENT"]);

function ordered(verdicts) {
  const surfaces = new Map();
  for (const verdict of verdicts) {
    if (!surfaces.has(verdict.surface)) {
      surfaces.set(verdict.surface, surfaces.size);
    }
  }
  const weight = (verdict) =>
    verdict.outcome === "SERVED" ? 0 : NOT_CANDIDATES.has(verdict.outcome) ? 2 : 1;
  return verdicts
    .map((verdict, index) => [verdict, index])
    .sort(
      ([a, i], [b, j]) =>
        surfaces.get(a.surface) - surfaces.get(b.surface) || weight(a) - weight(b) || i - j,
    )
    .map(([verdict]) => verdict);
}

function showVerdicts(verdicts, note, warning = "") {
  fill($("#verdicts"), ordered(verdicts || []), (row, verdict) => {
    const outcome = verdict.outcome.toLowerCase().replaceAll("_", " ");
    const badge = document.createElement("span");
    const kind = outcome === "served" || outcome === "suppressed" ? outcome : "other";
    badge.className = `verdict verdict-${kind}`;
    badge.textContent = outcome;
    cell(row, verdict.surface);
    cell(row, verdict.treatmentId);
    cell(row, badge);
    cell(row, verdict.detail);
  });
  const shown = $("#why-note");
  shown.textContent = note;
  if (warning) {
    const strong = document.createElement("strong");
    strong.className = "warning";
    strong.textContent = ` ${warning}`;
    shown.append(strong);
  }
}

function clearVerdicts() {
  fill($("#verdicts"), [], () => {});
  $("#why-note").textContent = "";
}

function counted(text) {
  return /^\d+$/.test(text.trim()) ? Number(text.trim()) : undefined;
}

function formRequest() {
  const surface = { surface: $("#why-surface").value };
  const maximum = counted($("#why-maximum").value);
  const minimum = counted($("#why-minimum").value);
  if (maximum !== undefined) {
    surface.maximumTreatmentCount = maximum;
  }
  if (minimum !== undefined) {
    surface.minimumTreatmentCount = minimum;
  }
  return {
    projectId: $("#project").value,
    userId: $("#why-user").value.trim(),
    surfaces: [surface],
    languageCode: $("#why-language").value.trim(),
    contextualAttributes: attributes($("#why-attributes").value),
  };
}

function fillForm(request) {
  $("#why-user").value = request.userId || "";
  const first = (request.surfaces || [])[0] || {};
  if (first.surface) {
    $("#why-surface").value = first.surface;
  }
  $("#why-maximum").value = first.maximumTreatmentCount ?? "";
  $("#why-minimum").value = first.minimumTreatmentCount ?? "";
  $("#why-language").value = request.languageCode || "";
  $("#why-attributes").value = attributeText(request.contextualAttributes);
}

function describeSurfaces(request) {
  return (request.surfaces || [])
    .map((s) => {
      const counts = [];
      if (s.maximumTreatmentCount !== undefined) {
        counts.push(`at most ${s.maximumTreatmentCount}`);
      }
      if (s.minimumTreatmentCount !== undefined) {
        counts.push(`at least ${s.minimumTreatmentCount}`);
      }
      return counts.length ? `${s.surface} (${counts.join(", ")})` : s.surface;
    })
    .join(", ");
}

// What "Why (not)?" shows, explained again on each refresh: the form's
// request now, or a decision as it was made.
async function explain() {
  const shown = state.explained;
  if (!shown) {
    return;
  }
  try {
    if (shown.kind === "form") {
      await explainForm();
    } else {
      await explainDecision(shown.decision);
    }
  } catch (error) {
    clearVerdicts();
    throw error;
  }
}

async function explainForm() {
  const request = formRequest();
  if (!request.userId) {
    return;
  }
  const answer = await admin("ExplainDecision", { request });
  showVerdicts(
    answer.verdicts,
    `As GetTreatments would decide now (${answer.decideTime} by the server's clock), ` +
      `for ${request.userId} on ${describeSurfaces(request)}.`,
  );
}

async function explainDecision(decision) {
  const request = decision.request || {};
  const answered = decision.response || {};
  const served = answered.userTreatments || [];
  const asked = `the request as sent (${describeSurfaces(request)})`;
  if (decision.verdicts && decision.verdicts.length) {
    showVerdicts(
      decision.verdicts,
      `As decided at ${decision.decideTime} (the server's clock), with ${asked}: ` +
        "the verdicts recorded when it served nothing.",
    );
    return;
  }
  const answer = await admin("ExplainDecision", { request, decideTime: decision.decideTime });
  const now = new Map(
    (answer.verdicts || []).map((v) => [`${v.surface} ${v.treatmentId}`, v.outcome]),
  );
  const changed = served.filter((t) => now.get(`${t.surface} ${t.treatmentId}`) !== "SERVED");
  const warning = changed.length
    ? `It served ${changed.map((t) => `${t.treatmentId} on ${t.surface}`).join(", ")}; ` +
      "explained again, it would not: the user's activity changed since."
    : "";
  showVerdicts(
    answer.verdicts,
    `As decided at ${decision.decideTime} (the server's clock), with ${asked}; ` +
      "the user's activity is read as it is now, so what they did since counts.",
    warning,
  );
}

// The feeds.

function micros(value) {
  const number = Number(value);
  return Number.isFinite(number) ? new Date(number / 1000).toISOString() : String(value);
}

function attributeText(attributes) {
  return (attributes || [])
    .map((a) => `${a.key}=${a.stringValue ?? a.boolValue ?? a.integerValue ?? ""}`)
    .join(" ");
}

async function refreshDecisions() {
  const answer = await admin("ListRecentDecisions", { projectId: $("#project").value });
  fill($("#decision-feed"), answer.decisions || [], (row, decision) => {
    const asked = decision.request || {};
    const answered = decision.response || {};
    const served = (answered.userTreatments || []).map((t) => `${t.treatmentId} on ${t.surface}`);
    cell(row, decision.decideTime);
    cell(row, asked.userId);
    cell(row, (asked.surfaces || []).map((s) => s.surface).join(", "));
    cell(row, served.length ? served.join(", ") : "nothing");
    cell(row, answered.responseId);
    row.addEventListener("click", () => {
      fillForm(asked);
      state.explained = { kind: "decision", decision };
      explain().catch(showError);
    });
  });
}

// One at a time: a call while `work` runs makes it run once more when it ends, not
// beside it (on a big store a listing with a rare filter makes up to FEED_CALLS calls).
// `busy()` says whether it runs.
function oneAtATime(work) {
  let running = null;
  let again = false;
  const run = () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          try {
            await work();
          } catch (error) {
            if (!again) {
              throw error;
            } // else asked for again meanwhile: that run says how it went
          }
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
  run.busy = () => running !== null;
  return run;
}

// Calls `work` once the events stop coming for SETTLE_MS.
function settled(work) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(work, SETTLE_MS);
  };
}

// The filters the feeds list by: the fields' text once it has settled.
const filters = { interactions: { userId: "", treatmentId: "" }, journalUserId: "" };

function settleFilters() {
  filters.interactions = {
    userId: $("#filter-user").value.trim(),
    treatmentId: $("#filter-treatment").value.trim(),
  };
  filters.journalUserId = $("#journal-user").value.trim();
}

const refreshInteractions = oneAtATime(async () => {
  const body = { projectId: $("#project").value, ...filters.interactions, newestFirst: true };
  // The newest FEED_SIZE stored, however big the store. A filter no index serves reads a
  // stretch of the store a call, so a page can come back short with a token: the pages are
  // followed, FEED_CALLS at most a refresh.
  const found = [];
  let pageToken = "";
  let calls = 0;
  do {
    const page = await admin("ListInteractions", {
      ...body,
      pageSize: FEED_SIZE - found.length,
      pageToken,
    });
    found.push(...(page.interactions || []));
    pageToken = page.nextPageToken || "";
    calls += 1;
  } while (pageToken && found.length < FEED_SIZE && calls < FEED_CALLS);
  $("#interactions-unread").textContent =
    pageToken && found.length < FEED_SIZE
      ? "(older records not searched: add a user to the filter to search them all)"
      : "";
  fill($("#interaction-feed"), found, (row, logged) => {
    const interaction = logged.interaction || {};
    cell(row, logged.sequence);
    cell(row, micros(interaction.interactionTimeMicros));
    cell(row, interaction.userId);
    cell(row, interaction.interactionType);
    cell(row, interaction.treatmentId);
    cell(row, interaction.surface);
    cell(row, interaction.treatmentTrackingId);
  });
});

// The journal.

async function journalMethods() {
  const names = new Set();
  const api = [];
  for (const url of ["/openapi.json", "/emulator/v1/openapi.json"]) {
    const answer = await fetch(url);
    if (!answer.ok) {
      continue;
    }
    for (const operations of Object.values((await answer.json()).paths || {})) {
      for (const operation of Object.values(operations)) {
        if (operation.summary) {
          names.add(operation.summary);
          if (url === "/openapi.json") {
            api.push(operation.summary);
          }
        }
      }
    }
  }
  const select = $("#journal-method");
  select.append(...[...names].sort().map((name) => new Option(name, name)));
  $("#fault-method").append(...api.sort().map((name) => new Option(name, name)));
}

// Faults.

function describeFault(fault) {
  const what = [];
  if (fault.evolve) {
    what.push("answers as a newer API could (evolvedField, EVOLVED_VALUE, evolvedObject)");
  }
  if (fault.code && fault.code !== "OK") {
    what.push(`fails with ${fault.code}${fault.httpStatus ? ` (HTTP ${fault.httpStatus})` : ""}`);
  }
  if (fault.delay) {
    what.push(`after ${fault.delay}`);
  }
  return what.join(", ");
}

async function refreshFaults() {
  const faults = (await admin("ListFaults")).faults || [];
  fill($("#fault-list"), faults, (row, fault) => {
    cell(row, fault.name);
    cell(row, fault.method);
    cell(row, describeFault(fault));
    cell(row, fault.count ? String(fault.remainingCount ?? 0) : `each call, ${fault.fraction * 100}%`);
    cell(row, String(fault.selectedCount ?? 0));
  });
}

async function armFault() {
  const kind = $("#fault-kind").value;
  const count = Number($("#fault-count").value);
  const fault = { method: $("#fault-method").value };
  if (count > 0) {
    fault.count = count;
  } else {
    fault.fraction = 1;
  }
  if (kind === "evolve") {
    fault.evolve = true;
  } else {
    fault.code = kind;
  }
  await admin("CreateFault", { fault });
  await refreshFaults();
}

function codeOf(entry) {
  return entry.code || "OK";
}

function why(entry) {
  if (entry.error) {
    return entry.error.message || "";
  }
  if ((entry.verdicts || []).length) {
    const missed = ordered(entry.verdicts).filter((v) => !NOT_CANDIDATES.has(v.outcome));
    const first = missed[0] || entry.verdicts[0];
    return `served nothing: ${first.treatmentId} ${first.outcome.toLowerCase().replaceAll("_", " ")}`;
  }
  return "";
}

function detail(entry) {
  const lines = [
    `#${entry.sequence} ${entry.receiveTime} ${entry.transport} ${entry.target}`,
    `status: ${entry.httpStatus ? `${entry.httpStatus} ` : ""}${codeOf(entry)}, ${entry.duration}`,
    "",
    ...(entry.headers || []).map((h) => `${h.name}: ${h.value}`),
    "",
    `request${entry.requestTruncated ? " (cut)" : ""}: ${entry.request || "(empty)"}`,
  ];
  if (entry.error) {
    lines.push("", `error: ${JSON.stringify(entry.error, null, 2)}`);
  }
  if (entry.response) {
    lines.push("", `response: ${entry.response}`);
  }
  if ((entry.verdicts || []).length) {
    lines.push("", "served nothing; the verdicts at that moment:");
    for (const v of ordered(entry.verdicts)) {
      lines.push(`  ${v.surface} ${v.treatmentId}: ${v.outcome.toLowerCase()} ${v.detail || ""}`);
    }
  }
  return lines.join("\n");
}

const refreshJournal = oneAtATime(async () => {
  const body = {
    method: $("#journal-method").value,
    userId: filters.journalUserId,
    failedOnly: $("#journal-failed").checked,
    apiCallsOnly: !$("#journal-admin").checked,
    newestFirst: true,
    pageSize: 200,
  };
  let page;
  try {
    page = await admin("ListJournal", body);
  } catch (error) {
    $("#journal-dropped").textContent = String(error.message || error);
    fill($("#journal-feed"), [], () => {});
    return;
  }
  const dropped = Number(page.droppedCount || 0);
  $("#journal-dropped").textContent = dropped
    ? `(keeps the last ${page.capacity} calls: ${dropped} older ones dropped)`
    : "";
  fill($("#journal-feed"), page.entries || [], (row, entry) => {
    cell(row, entry.sequence);
    cell(row, entry.receiveTime);
    cell(row, entry.transport);
    cell(row, entry.method || entry.target);
    cell(row, `${entry.httpStatus ? `${entry.httpStatus} ` : ""}${codeOf(entry)}`);
    cell(row, entry.userId);
    cell(row, (Number.parseFloat(entry.duration) * 1000).toFixed(1));
    cell(row, why(entry));
    row.className = codeOf(entry) === "OK" ? "" : "failed";
    row.addEventListener("click", () => {
      const shown = $("#journal-detail");
      shown.textContent = detail(entry);
      shown.hidden = false;
    });
  });
});

// The whole page, one refresh at a time: a tick while one runs is skipped.
const refresh = oneAtATime(async () => {
  try {
    await refreshClock();
    await refreshProjects();
    await refreshDecisions();
    await refreshInteractions();
    await refreshJournal();
    await refreshFaults();
    await explain();
    showError(null);
  } catch (error) {
    showError(error);
  }
});

async function open(key) {
  state.key = key;
  try {
    await refreshClock();
  } catch (error) {
    showError(error);
    return;
  }
  sessionStorage.setItem(KEY_STORE, key);
  $("#views").hidden = false;
  settleFilters();
  await refresh();
  clearInterval(state.timer);
  state.timer = setInterval(() => {
    if (document.visibilityState === "visible" && !refresh.busy()) {
      refresh();
    }
  }, REFRESH_MS);
}

function wire() {
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    open($("#admin-key").value);
  });
  $("#why-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.explained = { kind: "form" };
    explain()
      .then(() => showError(null))
      .catch(showError);
  });
  const filtered = (refreshFeed) =>
    settled(() => {
      settleFilters();
      refreshFeed().catch(showError);
    });
  $("#journal-filter").addEventListener("input", filtered(refreshJournal));
  $("#journal-filter").addEventListener("submit", (event) => event.preventDefault());
  journalMethods().catch(showError);
  $("#interaction-filter").addEventListener("input", filtered(refreshInteractions));
  $("#interaction-filter").addEventListener("submit", (event) => event.preventDefault());
  $("#project").addEventListener("change", () => refresh());
  $("#fault-form").addEventListener("submit", (event) => {
    event.preventDefault();
    armFault()
      .then(() => showError(null))
      .catch(showError);
  });
  $("#faults-clear").addEventListener("click", () =>
    admin("ClearFaults").then(refreshFaults).catch(showError),
  );
  $("#clock-freeze").addEventListener("click", async () => {
    const clock = await refreshClock();
    setClock({ freezeTime: clock.now }).catch(showError);
  });
  $("#clock-advance").addEventListener("click", () =>
    setClock({ advance: "86400s" }).catch(showError),
  );
  $("#clock-real").addEventListener("click", () => setClock({ realTime: true }).catch(showError));
  $("#reset").addEventListener("click", () => {
    if (window.confirm("Reset the whole server to its seed? What was written is lost.")) {
      admin("Reset").then(refresh).catch(showError);
    }
  });
  const remembered = sessionStorage.getItem(KEY_STORE);
  if (remembered) {
    $("#admin-key").value = remembered;
    open(remembered);
  }
}

wire();
