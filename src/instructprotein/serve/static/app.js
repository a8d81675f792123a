// InstructProtein page: calls the JSON API of the server that served it; no build step, no other origin.
// Everything the user or the model wrote is put in the page with textContent, never as HTML.
"use strict";

const EXAMPLE_SEQUENCE =
  ">sp|P0CG48|UBC_HUMAN ubiquitin (first copy)\n" +
  "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG";
const EXAMPLE_DESCRIPTION = "binds zinc ion and is located in nucleus";

// -- small helpers -------------------------------------------------------------------------------

function $(id) { return document.getElementById(id); }

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function fmt(x, digits = 3) {
  if (x === null || x === undefined) return "";
  if (typeof x === "number") return Number.isInteger(x) ? String(x) : x.toFixed(digits);
  return String(x);
}

function pct(p) { return (p === null || p === undefined) ? "" : (100 * p).toFixed(1) + " %"; }

function table(headers, rows, numeric = []) {
  const head = el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })));
  // a cell is a value, or {text, good} to colour it (true: green, false: red); booleans read yes / no
  const body = rows.map((r) => el("tr", {}, r.map((v, i) => {
    const cell = (v !== null && typeof v === "object") ? v : { text: v, good: typeof v === "boolean" ? v : undefined };
    const cls = [];
    if (numeric.includes(i)) cls.push("num");
    if (cell.good === true) cls.push("good");
    if (cell.good === false) cls.push("bad");
    const text = cell.text === true ? "yes" : cell.text === false ? "no" : fmt(cell.text);
    return el("td", { class: cls.join(" ") || null, text });
  })));
  return el("div", { class: "table-wrap" }, el("table", {}, el("thead", {}, head), el("tbody", {}, body)));
}

class ApiError extends Error {
  constructor(status, message, detail) {
    super(message);
    this.status = status;
    this.detail = detail;
  }
}

async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "Cannot reach the server (" + e.message + "). Is it still running?");
  }
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const message = (data && data.error) || ("The server answered " + response.status + " " + response.statusText);
    throw new ApiError(response.status, message, data && data.detail);
  }
  return data;
}

const STATUS_WORDS = {
  400: "The input was refused",
  413: "The request is too large",
  422: "The request is not valid",
  503: "The server is busy",
};

function showError(name, err) {
  const box = $(name + "-error");
  box.replaceChildren();
  const title = STATUS_WORDS[err.status] || (err.status ? "Error " + err.status : "Error");
  box.append(el("strong", { text: title + ": " }), el("span", { class: "message", text: err.message }));
  if (Array.isArray(err.detail) && err.detail.length > 1) {
    box.append(el("ul", {}, err.detail.map((d) => el("li", { text: (d.field ? d.field + ": " : "") + d.message }))));
  }
  box.hidden = false;
  $(name + "-output").replaceChildren();
  $(name + "-output").dataset.state = "error";
}

async function submit(name, button, call, render) {
  const box = $(name + "-error");
  const out = $(name + "-output");
  box.hidden = true;
  button.disabled = true;
  const label = button.textContent;
  button.textContent = "Working…";
  out.dataset.state = "busy";
  out.replaceChildren(el("p", { class: "muted", text: "The model is working on it…" }));
  try {
    const data = await call();
    out.replaceChildren(...render(data));
    out.dataset.state = "done";
  } catch (err) {
    if (!(err instanceof ApiError)) err = new ApiError(0, String(err && err.message || err));
    showError(name, err);
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

function intValue(id) { const v = $(id).value.trim(); return v === "" ? undefined : Number(v); }

// -- describe ------------------------------------------------------------------------------------

function describeRequest() {
  const text = $("describe-input").value;
  return text.trimStart().startsWith(">") ? { fasta: text } : { sequence: text };
}

function renderDescription(d) {
  const card = el("article", { class: "card result", "data-id": d.id });
  const cut = d.model_length < d.length ? ", the model read " + d.model_length + " of them (both ends)" : "";
  card.append(el("h3", { text: d.id + " (" + d.length + " residues" + cut + ")" }));
  const dl = el("dl", { class: "answer" });
  const add = (k, v, cls) => dl.append(el("dt", { text: k }), el("dd", { class: cls, text: v || "(no answer)" }));
  add("Function", d.function, "function");
  if (d.system_location) {
    const top = d.system_location.slice(0, 3).map((x) => x.location + " " + pct(x.probability)).join(", ");
    add("Location (model + homologs)", top, "location system");
    add("Location, the model's own words", d.location, "location");
  } else {
    add("Location", d.location, "location");
  }
  if (d.location_scores) {
    const top = Object.entries(d.location_scores.probabilities).slice(0, 3)
      .map(([k, p]) => k + " " + pct(p)).join(", ");
    add("Location by likelihood", top);
  }
  const aspects = { F: "GO molecular function", P: "GO biological process", C: "GO cellular component" };
  if (!d.go_verified) {
    for (const [a, text] of Object.entries(d.go_answers || {})) add(aspects[a] || "GO " + a, text);
  }
  card.append(dl);
  if (d.go_verified) {
    const rows = [];
    for (const [a, terms] of Object.entries(d.go_verified)) {
      for (const t of terms) rows.push([t.id, t.name, aspects[a] || a, pct(t.confidence), pct(t.homolog_vote),
        t.model_yes === null ? "not asked" : pct(t.model_yes)]);
    }
    card.append(el("h4", { text: "GO terms, verified (model + homologs; confident ones only)" }));
    if (rows.length) {
      card.append(table(["GO id", "name", "aspect", "confidence", "homologs' vote", "model p(yes)"], rows, [3, 4, 5]));
    } else {
      card.append(el("p", { class: "muted", text: "No GO term reaches the confidence threshold." }));
    }
  }

  const go = d.go_terms;
  if (go && !d.go_verified) {
    if (go.direct.length) {
      card.append(el("h4", { text: "GO terms named in the answers" }));
      card.append(table(["GO id", "name", "aspect", "most specific", "matched by"],
        go.direct.map((m) => [m.id, m.name, m.aspect, m.most_specific ? "yes" : "", m.matched_by])));
      card.append(el("p", { class: "muted",
        text: go.implied.length + " more implied by the ontology" +
          (go.implied.length ? ": " + go.implied.slice(0, 8).map((t) => t.id + " " + t.name).join("; ") +
            (go.implied.length > 8 ? "; …" : "") : "") }));
    } else {
      card.append(el("p", { class: "muted", text: "GO terms: " + go.summary }));
    }
  } else if (!d.go_verified) {
    card.append(el("p", { class: "muted", text: "GO terms are not mapped to ids: the server has no knowledge graph." }));
  }
  if (d.homologs && d.homologs.length) {
    card.append(el("h4", { text: "Homologs in the knowledge graph (put in the prompt)" }));
    card.append(table(["accession", "identity", "E-value", "query coverage"],
      d.homologs.map((h) => [h.accession, h.identity, h.evalue.toExponential(1), h.qcov]), [1, 2, 3]));
  }
  for (const n of d.notes || []) card.append(el("p", { class: "muted note", text: "Note: " + n }));
  card.append(el("details", {}, el("summary", { text: "As text" }), el("pre", { class: "fasta", text: d.text })));
  return card;
}

// -- design --------------------------------------------------------------------------------------

function designRequest() {
  return {
    description: $("design-input").value,
    n: intValue("design-n"),
    temperature: intValue("design-temperature"),
    top_p: intValue("design-top-p"),
    seed: intValue("design-seed"),
    min_len: intValue("design-min-len"),
    max_len: intValue("design-max-len"),
  };
}

function renderDesign(run) {
  const parts = [];
  const info = el("dl", { class: "answer" },
    el("dt", { text: "Request" }), el("dd", { text: run.request }),
    el("dt", { text: "Instruction" }), el("dd", { class: "muted", text: run.prompt }));
  if (run.requested_terms) {
    const named = run.requested_terms.direct.map((m) => m.id + " " + m.name).join("; ");
    info.append(el("dt", { text: "GO terms asked for" }), el("dd", { text: named || "none recognised" }));
  }
  const st = run.settings || {};
  if (st.strategy) {
    info.append(el("dt", { text: "How" }), el("dd", { text: (st.strategy === "exemplar"
      ? "known proteins carrying the request, " + Math.round(100 * (st.mutation_rate || 0)) + " % of residues rewritten by the model"
      : "sampled from the request alone") + "; best " + run.designs.length + " of " + st.candidates + " candidates"
      + (st.note ? " (" + st.note + ")" : "") }));
  }
  parts.push(el("div", { class: "card" }, info));

  const verdicts = run.designs.map((d) => {
    const carries = d.carries_request === null || d.carries_request === undefined ? ""
      : { text: d.carries_request ? "yes" : "no", good: d.carries_request };
    const closest = d.closest ? d.closest + " (" + fmt(d.closest_identity, 2) + ")" : "none found";
    const novel = d.closest_identity === null || d.closest_identity === undefined ? ""
      : { text: d.closest_identity < 0.7 ? "yes" : "no", good: d.closest_identity < 0.7 };
    const ex = d.exemplar ? d.exemplar.accession + " (" + fmt(d.exemplar_identity, 2) + ")" : "";
    return [d.id, closest, novel, carries, d.verification === null ? "" : fmt(d.verification, 3), ex];
  });
  parts.push(el("div", { class: "card" },
    el("h3", { text: "Does each design carry the request?" }),
    table(["design", "closest training protein (identity)", "new (< 70 %)", "it carries the request",
      "model's verification (log-prob gain per residue)", "exemplar (identity)"], verdicts, [4])));

  const rows = run.designs.map((d) => {
    const c = d.checks || {};
    const asked = c.requested || [];
    const carried = !asked.length ? "" : !c.closest ? "no close protein"
      : asked.map((r) => r.id + (r.carried ? " yes" : " no")).join(", ");
    const closest = c.closest ? c.closest + " (" + fmt(c.closest_identity, 2) + ")"
      : c.closest_searched ? "none found" : "not searched";
    const flagged = c.low_complexity === undefined ? "" : { text: c.low_complexity, good: !c.low_complexity };
    return [d.id, d.length, d.ended_by, c.valid_alphabet, c.length_ok === null ? "" : c.length_ok,
      c.low_complexity_fraction, c.longest_homopolymer, c.repeat_fraction, flagged,
      closest, carried, c.passed];
  });
  parts.push(el("div", { class: "card" },
    el("h3", { text: "Checks" }),
    table(["design", "length", "ended by", "alphabet ok", "length ok", "low-complexity fraction",
      "longest run", "repeat fraction", "low complexity", "closest known (identity)", "asked terms carried", "passed"],
    rows, [1, 5, 6, 7])));
  const copy = el("button", { type: "button", class: "secondary", text: "Copy FASTA" });
  copy.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(run.fasta));
  parts.push(el("div", { class: "card" }, el("h3", { text: "Sequences (FASTA)" }),
    el("pre", { class: "fasta", id: "design-fasta", text: run.fasta }), copy));
  return parts;
}

// -- classify ------------------------------------------------------------------------------------

function classifyRequest() {
  return {
    sequence: $("classify-sequence").value,
    question: $("classify-question").value,
    prefix: $("classify-prefix").value,
    options: $("classify-options").value.split("\n").map((s) => s.trim()).filter((s) => s),
    rule: $("classify-rule").value,
  };
}

function renderChoice(c) {
  const ranked = [...c.options].sort((a, b) => b.probability - a.probability);
  return [el("div", { class: "card" },
    el("h3", {}, "Answer: ", el("span", { class: "answer-text", text: c.answer }), c.tied ? " (tied)" : ""),
    table(["option", "probability (" + c.rule + ")", "first token", "sum", "mean", "tokens"],
      ranked.map((o) => [o.option, pct(o.probability), o.first_token, o.sum, o.mean, o.tokens]), [1, 2, 3, 4, 5]))];
}

// -- wiring --------------------------------------------------------------------------------------

function selectTab(name) {
  for (const t of ["describe", "design", "classify"]) {
    $("tab-" + t).setAttribute("aria-selected", String(t === name));
    $("panel-" + t).hidden = t !== name;
  }
}

async function showHealth() {
  const status = $("status");
  try {
    const h = await api("GET", "/health");
    const kg = h.knowledge_graph ? "knowledge graph: yes (GO ids, design checks" + (h.retrieval ? ", retrieval" : "") + ")"
      : "knowledge graph: none (answers are the model's text only)";
    status.textContent = "Model " + (h.model_path || "(in memory)") + " · vocabulary " + h.vocab_size +
      " · context " + h.context_length + " tokens · " + h.device + " · " + kg;
    $("design-n").max = h.limits.max_designs;
    status.classList.remove("bad");
  } catch (err) {
    status.textContent = "The server does not answer: " + err.message;
    status.classList.add("bad");
  }
}

function wire() {
  for (const t of ["describe", "design", "classify"]) $("tab-" + t).addEventListener("click", () => selectTab(t));
  $("describe-form").addEventListener("submit", (e) => {
    e.preventDefault();
    submit("describe", $("describe-button"), () => api("POST", "/describe", describeRequest()),
      (data) => data.results.map(renderDescription));
  });
  $("design-form").addEventListener("submit", (e) => {
    e.preventDefault();
    submit("design", $("design-button"), () => api("POST", "/design", designRequest()), renderDesign);
  });
  $("classify-form").addEventListener("submit", (e) => {
    e.preventDefault();
    submit("classify", $("classify-button"), () => api("POST", "/classify", classifyRequest()), renderChoice);
  });
  $("describe-example").addEventListener("click", () => { $("describe-input").value = EXAMPLE_SEQUENCE; count(); });
  $("design-example").addEventListener("click", () => { $("design-input").value = EXAMPLE_DESCRIPTION; });
  const count = () => {
    const text = $("describe-input").value;
    const body = text.trimStart().startsWith(">") ? text.split("\n").filter((l) => !l.startsWith(">")).join("") : text;
    const n = body.replace(/\s+/g, "").length;
    $("describe-count").textContent = n ? n + " residues" : "";
  };
  $("describe-input").addEventListener("input", count);
  if (!$("classify-sequence").value) $("classify-sequence").value = EXAMPLE_SEQUENCE.split("\n")[1];
  showHealth();
}

document.addEventListener("DOMContentLoaded", wire);
