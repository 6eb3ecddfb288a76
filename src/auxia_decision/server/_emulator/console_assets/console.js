// The console of the local server: everything it shows comes from the
// emulator admin API (/emulator/v1/*), with the admin key the user types.
// The key stays in this tab (sessionStorage); nothing leaves the machine.

const KEY_STORE = "auxia-console-admin-key";
const REFRESH_MS = 2000;
const state = { key: "", projects: [], timer: null };

const $ = (selector) => document.querySelector(selector);

async function admin(method, body = {}) {
  const answer = await fetch(`/emulator/v1/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-admin-key": state.key },
    body: JSON.stringify(body),
  });
  const text = await answer.text();
  const json = text ? JSON.parse(text) : {};
  if (!answer.ok) {
    throw new Error(json.message || `${method}: HTTP ${answer.status}`);
  }
  return json;
}

async function everyPage(method, body, field) {
  const found = [];
  let pageToken = "";
  do {
    const page = await admin(method, { ...body, pageSize: 1000, pageToken });
    found.push(...(page[field] || []));
    pageToken = page.nextPageToken || "";
  } while (pageToken);
  return found;
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

async function explain() {
  const user = $("#why-user").value.trim();
  if (!user) {
    return;
  }
  const request = {
    projectId: $("#project").value,
    userId: user,
    surfaces: [{ surface: $("#why-surface").value }],
    languageCode: $("#why-language").value.trim(),
    contextualAttributes: attributes($("#why-attributes").value),
  };
  const answer = await admin("ExplainDecision", { request });
  fill($("#verdicts"), answer.verdicts || [], (row, verdict) => {
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
      $("#why-user").value = asked.userId || "";
      const first = (asked.surfaces || [])[0];
      if (first) {
        $("#why-surface").value = first.surface;
      }
      $("#why-language").value = asked.languageCode || "";
      $("#why-attributes").value = attributeText(asked.contextualAttributes);
      explain().catch(showError);
    });
  });
}

async function refreshInteractions() {
  const body = {
    projectId: $("#project").value,
    userId: $("#filter-user").value.trim(),
    treatmentId: $("#filter-treatment").value.trim(),
  };
  const found = await everyPage("ListInteractions", body, "interactions");
  fill($("#interaction-feed"), found.reverse().slice(0, 200), (row, logged) => {
    const interaction = logged.interaction || {};
    cell(row, logged.sequence);
    cell(row, micros(interaction.interactionTimeMicros));
    cell(row, interaction.userId);
    cell(row, interaction.interactionType);
    cell(row, interaction.treatmentId);
    cell(row, interaction.surface);
    cell(row, interaction.treatmentTrackingId);
  });
}

async function refresh() {
  try {
    await refreshClock();
    await refreshProjects();
    await refreshDecisions();
    await refreshInteractions();
    if ($("#why-user").value.trim()) {
      await explain();
    }
    showError(null);
  } catch (error) {
    showError(error);
  }
}

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
  await refresh();
  clearInterval(state.timer);
  state.timer = setInterval(() => {
    if (document.visibilityState === "visible") {
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
    explain().catch(showError);
  });
  $("#interaction-filter").addEventListener("input", () => refreshInteractions().catch(showError));
  $("#interaction-filter").addEventListener("submit", (event) => event.preventDefault());
  $("#project").addEventListener("change", () => refresh());
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
