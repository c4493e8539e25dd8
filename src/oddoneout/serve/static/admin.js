// The admin page: asks for the admin token, keeps it in this tab's sessionStorage only, and shows
// the server's summary. Every text is set with textContent (never innerHTML).
"use strict";

const TOKEN_KEY = "oddoneout-admin-token";
const REFRESH_MS = 10000;
let timer = null;

function byId(id) {
  return document.getElementById(id);
}

function screen(id) {
  for (const name of ["login", "summary", "problem"]) byId(name).hidden = name !== id;
}

function setText(id, text) {
  byId(id).textContent = text;
}

function number(value, digits) {
  return value === null || value === undefined ? "n/a" : value.toFixed(digits);
}

function percent(value, digits) {
  return value === null || value === undefined ? "n/a" : (100 * value).toFixed(digits || 0) + "%";
}

function rulesText(rules) {
  const parts = [];
  if (rules.exclude_max_fast_fraction < 1) {
    parts.push("more than " + percent(rules.exclude_max_fast_fraction) + " too fast");
  }
  if (rules.exclude_min_catch_accuracy > 0) {
    parts.push("fewer than " + percent(rules.exclude_min_catch_accuracy) + " of catch trials right");
  }
  const excluded = parts.length ? "excluded: " + parts.join(", or ") : "no exclusion rule is set";
  return "too fast: under " + rules.min_rt_ms + " ms; " + excluded;
}

function login(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (timer !== null) { clearTimeout(timer); timer = null; }
  byId("login-problem").hidden = !message;
  setText("login-problem", message || "");
  screen("login");
  byId("token").focus();
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function participantRow(p) {
  const row = document.createElement("tr");
  if (p.excluded) row.className = "excluded";
  const who = p.participant === null ? "anonymous " + p.session_id.slice(0, 8) : p.participant.slice(0, 16);
  cell(row, who, "hash").title = p.participant === null ? p.session_id : p.participant;
  cell(row, p.platform);
  cell(row, p.n_answered + "/" + p.n_trials + (p.finished ? "" : p.active ? " (active)" : " (idle)"));
  cell(row, p.median_rt_ms === null ? "n/a" : number(p.median_rt_ms, 0) + " ms");
  cell(row, percent(p.fast_fraction));
  // null where no position can be chosen (an anchor or ranked trial's reference) or without answers
  const rates = p.choice_rate.every((r) => r === null) ? "n/a"
    : p.choice_rate.map((r) => (r === null ? "–" : number(r, 2))).join(" ");
  cell(row, rates);
  cell(row, p.position_p === null ? "n/a" : p.position_p.toPrecision(3));
  cell(row, p.n_catch ? percent(p.catch_accuracy) + " of " + p.n_catch : "n/a");
  cell(row, p.excluded ? "yes: " + p.exclusion_reason : "no");
  return row;
}

function render(summary) {
  const progress = summary.progress;
  byId("progress-bar").value = progress.fraction || 0;
  setText("answered", String(progress.answered));
  setText("total", String(progress.total));
  setText("percent", percent(progress.fraction, 1));
  setText("leased", String(progress.leased));
  setText("rate-5", number(summary.rates.last_5_min.per_minute, 1));
  setText("rate-60", number(summary.rates.last_60_min.per_minute, 1));
  for (const name of ["total", "active", "idle", "finished", "excluded"]) {
    setText("sessions-" + name, String(summary.sessions[name]));
  }
  setText("rules", rulesText(summary.rules));
  const body = byId("participants").tBodies[0];
  body.replaceChildren(...summary.participants.map(participantRow));
  setText("updated", "updated " + new Date().toLocaleTimeString());
  screen("summary");
}

async function refresh() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) { login(""); return; }
  let response;
  try {
    response = await fetch("/api/admin/summary", {
      headers: { "Authorization": "Bearer " + token }, cache: "no-store", credentials: "omit",
    });
  } catch (error) {
    setText("problem-text", "The server did not answer; trying again.");
    screen("problem");
    timer = setTimeout(refresh, REFRESH_MS);
    return;
  }
  if (response.status === 401) { login("That token is not the admin token."); return; }
  if (response.status !== 200) {
    setText("problem-text", "The server answered " + response.status + "; trying again.");
    screen("problem");
  } else {
    render(await response.json());
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  byId("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = byId("token").value.trim();
    byId("token").value = "";
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    refresh();
  });
  byId("logout").addEventListener("click", () => login(""));
  refresh();
});
