// The participant page: consent, instructions, practice, trials, debrief. Texts are set with
// textContent only (never innerHTML), so no text from the server can become markup; media elements
// are made with createElement and load only this server's /media/<n> URLs.
"use strict";

const TOKEN_KEY = "oddoneout-token:" + location.pathname;
const PRACTICE_KEY = "oddoneout-practice-done:" + location.pathname;
const BREAK_KEY = "oddoneout-break-taken:" + location.pathname;
const SCREENS = ["consent", "instructions", "ready", "trial", "break", "debrief", "full", "problem"];
const REDIRECT_SECONDS = 5;   // the debrief stays this long before the page goes to the completion URL
const MAX_WAITS = 5;          // refusals for too many requests (429) waited out before giving up
const MEDIA_TIMEOUT_MS = 30000;  // a trial's media not ready by then: the page says so and offers to try again
const MEDIA_URL = /^\/media\/[0-9]+$/;

let token = localStorage.getItem(TOKEN_KEY);
let state = null;          // the server's last word on the session
let practice = [];         // the practice trials: {texts, media}
let practiceIndex = 0;
let mode = null;           // "practice" or "trial" while a trial is on screen
let shownAt = 0;           // performance.now() when the current trial was ready (its media loaded)
let busy = false;          // an answer is on its way, or the trial's media are loading: input is ignored
let shownCount = 0;        // trials put on screen: a late media event of an earlier one is ignored
// The trial type (the server's state.layout): odd-one-out shows 3 items, any one can be chosen; anchor and
// ranked trials show a reference (position 0, never chosen) and options at positions 1 .. n_shown - 1.
let layout = { trial_type: "odd_one_out", n_shown: 3, n_ranked: 1 };
let ranking = [];          // a ranked trial: the options' positions clicked so far, most similar first
let laidOut = null;        // the layout the option buttons were made for

function withReference() { return layout.trial_type !== "odd_one_out"; }
function rankedTrial() { return layout.trial_type === "ranked"; }
function firstOption() { return withReference() ? 1 : 0; }

function textOf(position) {
  // The element holding a shown item's caption: the reference's, or the option button's.
  if (withReference() && position === 0) return document.querySelector("#reference .text");
  return document.querySelector("#option-" + position + " .text");
}

function mediaBox(position) {
  return document.getElementById(withReference() && position === 0 ? "reference-media" : "media-" + position);
}

function setLayout(found) {
  // The page's trial screen for the server's trial type: the reference apart, one button per option.
  if (found && typeof found.trial_type === "string") layout = found;
  const key = layout.trial_type + ":" + layout.n_shown + ":" + layout.n_ranked;
  if (laidOut === key) return;
  laidOut = key;
  document.getElementById("reference-box").hidden = !withReference();
  document.getElementById("rank-controls").hidden = !rankedTrial();
  if (!withReference()) return;  // odd-one-out: the page's own three buttons
  const options = document.getElementById("options");
  options.replaceChildren();
  for (let position = 1; position < layout.n_shown; position++) {
    const column = document.createElement("div");
    column.className = "column";
    const media = document.createElement("div");
    media.className = "media";
    media.id = "media-" + position;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "option";
    button.id = "option-" + position;
    button.dataset.choice = String(position);
    for (const [name, text] of [["number", String(position)], ["rank", ""], ["text", ""]]) {
      const span = document.createElement("span");
      span.className = name;
      span.textContent = text;
      button.appendChild(span);
    }
    button.addEventListener("click", () => pick(position, "click"));
    column.append(media, button);
    options.appendChild(column);
  }
}

function showRanking() {
  // Each ranked option shows its rank; submit only once the ranking is complete.
  for (let position = 1; position < layout.n_shown; position++) {
    const button = document.getElementById("option-" + position);
    const rank = ranking.indexOf(position);
    button.classList.toggle("ranked", rank >= 0);
    button.querySelector(".rank").textContent = rank >= 0 ? "Rank " + (rank + 1) : "";
  }
  document.getElementById("rank-submit").disabled = ranking.length !== layout.n_ranked;
  document.getElementById("rank-undo").disabled = ranking.length === 0;
  document.getElementById("rank-reset").disabled = ranking.length === 0;
}

function pick(position, input) {
  // A click on (or the key of) the item at a shown position: the answer, or the next rank of a ranked trial.
  if (busy || mode === null || position < firstOption() || position >= layout.n_shown) return;
  if (!rankedTrial()) { choose(position, input); return; }
  if (ranking.includes(position) || ranking.length >= layout.n_ranked) return;
  ranking.push(position);
  showRanking();
}

function undoRank(all) {
  if (busy || mode === null || !rankedTrial()) return;
  if (all) ranking = []; else ranking.pop();
  showRanking();
}

function submitRanking(input) {
  if (busy || mode === null || !rankedTrial() || ranking.length !== layout.n_ranked) return;
  choose(ranking[0], input, ranking.slice());
}

function show(id) {
  for (const screen of SCREENS) document.getElementById(screen).hidden = screen !== id;
}

function problem(text) {
  document.getElementById("problem-text").textContent = text;
  show("problem");
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function api(method, path, body) {
  const headers = {};
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(path, {
      method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "omit",
    });
    let data = {};
    try { data = await response.json(); } catch (error) { data = {}; }
    if (response.status !== 429 || attempt >= MAX_WAITS) return { status: response.status, data: data };
    const seconds = Number(response.headers.get("Retry-After")) || 1;  // refused before anything changed
    await sleep(Math.min(seconds, 30) * 1000);
  }
}

function paragraphs(elementId, text) {
  // A text of the study config: one <p> per paragraph (a blank line apart), set as plain text.
  const element = document.getElementById(elementId);
  element.replaceChildren();
  for (const paragraph of String(text).split(/\n\s*\n/)) {
    if (!paragraph.trim()) continue;
    const p = document.createElement("p");
    p.textContent = paragraph.trim();
    element.appendChild(p);
  }
}

function redirectLater(url) {
  // After the debrief: to the completion URL (the server accepts only http(s) ones; checked again here).
  let target;
  try { target = new URL(url); } catch (error) { return; }
  if (target.protocol !== "https:" && target.protocol !== "http:") return;
  const link = document.getElementById("redirect-link");
  link.href = target.href;
  let left = REDIRECT_SECONDS;
  document.getElementById("redirect-seconds").textContent = String(left);
  document.getElementById("redirect").hidden = false;
  const timer = setInterval(() => {
    left -= 1;
    document.getElementById("redirect-seconds").textContent = String(Math.max(left, 0));
    if (left <= 0) { clearInterval(timer); location.assign(target.href); }
  }, 1000);
}

function urlParams() {
  const params = {};
  for (const [name, value] of new URLSearchParams(location.search)) params[name] = value;
  return params;
}

function mediaElement(medium, choice) {
  // An <img>, <video> or <audio> for one option (null for anything else). Its src is set by whenReady.
  let element;
  if (medium.kind === "image") {
    element = document.createElement("img");
    element.alt = "";
  } else if (medium.kind === "video") {
    element = document.createElement("video");
    element.muted = medium.muted !== false;   // browsers start a clip by themselves only without sound
    element.defaultMuted = element.muted;
    element.loop = Boolean(medium.loop);
    element.autoplay = Boolean(medium.autoplay);
    element.controls = !medium.autoplay;      // a clip that does not start by itself needs its controls
    element.playsInline = true;
    element.preload = "auto";
  } else if (medium.kind === "audio") {
    element = document.createElement("audio");
    element.controls = true;
    element.preload = "auto";
  } else {
    return null;
  }
  // a picture, or a clip without controls, is chosen by a click on it too (never a click on controls)
  element.addEventListener("click", () => { if (!element.controls) pick(choice, "click"); });
  return element;
}

function whenReady(element, url) {
  // Resolves once the element has loaded enough to be shown (a picture, a clip's first frame, a sound's start).
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out")), MEDIA_TIMEOUT_MS);
    const ready = element.tagName === "IMG" ? "load" : "loadeddata";
    element.addEventListener(ready, () => { clearTimeout(timer); resolve(); }, { once: true });
    element.addEventListener("error", () => { clearTimeout(timer); reject(new Error("failed")); }, { once: true });
    element.src = url;
  });
}

function display(shown, progressText) {
  // Put a trial ({texts, media}) on screen; answers count (and its response time runs) once its media are ready.
  const number = ++shownCount;
  busy = true;
  const waits = [];
  const videos = [];
  ranking = [];
  if (rankedTrial()) showRanking();
  if (!Array.isArray(shown.texts) || shown.texts.length !== layout.n_shown) {
    problem("This trial cannot be shown.");
    return;
  }
  for (let i = 0; i < layout.n_shown; i++) {
    const medium = shown.media ? shown.media[i] : null;
    const box = mediaBox(i);
    box.replaceChildren();
    textOf(i).textContent = medium ? "" : String(shown.texts[i]);
    box.hidden = !medium;
    if (!medium) continue;
    const element = mediaElement(medium, i);
    if (element === null || !MEDIA_URL.test(String(medium.url))) { problem("This trial cannot be shown."); return; }
    box.appendChild(element);
    waits.push(whenReady(element, String(medium.url)));
    if (medium.kind === "video" && medium.autoplay) videos.push(element);
  }
  document.getElementById("options").classList.toggle("with-media", waits.length > 0);
  document.getElementById("progress").textContent = progressText;
  const loading = document.getElementById("loading");
  loading.hidden = waits.length === 0;
  show("trial");
  Promise.all(waits).then(() => {
    if (number !== shownCount) return;
    for (const video of videos) video.play().catch(() => { video.controls = true; });  // autoplay refused
    loading.hidden = true;
    busy = false;
    shownAt = performance.now();
  }, () => {
    if (number !== shownCount) return;
    problem("A picture, clip or sound of this trial could not be loaded. Check your connection and try again.");
  });
}

function nextPractice() {
  if (practiceIndex >= practice.length) {
    localStorage.setItem(PRACTICE_KEY, "1");
    mode = null;
    show("ready");
    return;
  }
  mode = "practice";
  display(practice[practiceIndex], "Practice " + (practiceIndex + 1) + " of " + practice.length);
}

function proceed() {
  // Show what the session's state calls for: the debrief, a full study, or its next trial.
  if (state.done) {
    mode = null;
    if (state.full) { show("full"); return; }
    document.getElementById("completion-code").textContent = state.completion_code || "";
    show("debrief");
    if (state.completion_url) redirectLater(state.completion_url);
    return;
  }
  if (state.trials.length === 0) { refresh(); return; }
  const shown = state.n_answered + state.n_catch_answered;  // catch trials count among the trials shown
  if (breakDue(shown)) { mode = null; show("break"); document.getElementById("break-go").focus(); return; }
  mode = "trial";
  display(state.trials[0], "Trial " + (shown + 1) + " of " + (state.n_trials + state.n_catch));
}

function breakDue(shown) {
  // A break after every break_every trials answered (never after the last: the session is done then).
  // The break taken is remembered, so a reload on the break screen shows it again and one after it does not.
  const every = Number(state.break_every) || 0;
  if (every <= 0 || shown === 0 || shown % every !== 0) return false;
  return localStorage.getItem(BREAK_KEY) !== token + ":" + shown;
}

function endBreak() {
  if (document.getElementById("break").hidden) return;
  localStorage.setItem(BREAK_KEY, token + ":" + (state.n_answered + state.n_catch_answered));
  proceed();  // the next trial's response time starts when it is shown, after this
}

async function refresh() {
  const reply = await api("GET", "/api/session");
  if (reply.status !== 200) { problem(reply.data.error || "The server did not answer."); return; }
  state = reply.data;
  setLayout(state.layout);
  proceed();
}

async function choose(choice, input, ranked) {
  if (busy || mode === null) return;
  busy = true;
  const rt = performance.now() - shownAt;  // a ranked trial: up to its submission
  if (mode === "practice") {
    practiceIndex += 1;
    nextPractice();
    return;
  }
  const trial = state.trials[0];
  const answer = { key: trial.key, choice: choice, rt_ms: rt, input: input };
  if (ranked) answer.ranking = ranked;
  const reply = await api("POST", "/api/answer", answer);
  if (reply.status === 200) { state = reply.data; proceed(); return; }
  if (reply.status === 409) { await refresh(); return; }  // the trial was no longer ours: take the current ones
  problem(reply.data.error || "The answer could not be saved.");
}

async function consent() {
  const reply = await api("POST", "/api/session", { consent: true, params: urlParams() });
  if (reply.status !== 200) { problem(reply.data.error || "The study could not start."); return; }
  token = reply.data.token;
  localStorage.setItem(TOKEN_KEY, token);
  state = reply.data;
  practice = state.practice || [];
  begin();
}

function begin() {
  setLayout(state.layout);
  // After consent (or a reload): instructions first unless the session is under way.
  if (state.done || state.n_answered > 0 || localStorage.getItem(PRACTICE_KEY)) { proceed(); return; }
  document.getElementById("practice-note").hidden = practice.length === 0;
  show("instructions");
}

async function loadTexts() {
  const reply = await api("GET", "/api/texts");
  if (reply.status !== 200) return false;
  paragraphs("consent-text", reply.data.consent);
  paragraphs("instructions-text", reply.data.instructions);
  paragraphs("debrief-text", reply.data.debrief);
  paragraphs("break-text", reply.data.break);
  // the question above each trial: the config's question_text, else the trial type's own (the server's)
  document.getElementById("question").textContent = String(reply.data.question);
  return true;
}

async function start() {
  if (!(await loadTexts())) { problem("The study could not be loaded."); return; }
  if (token) {
    const reply = await api("GET", "/api/session");
    if (reply.status === 200) {
      state = reply.data;
      practice = state.practice || [];
      begin();
      return;
    }
    localStorage.removeItem(TOKEN_KEY);
    token = null;
  }
  show("consent");
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("consent-yes").addEventListener("click", consent);
  document.getElementById("instructions-go").addEventListener("click", () => {
    practiceIndex = 0;
    if (practice.length) nextPractice(); else { localStorage.setItem(PRACTICE_KEY, "1"); proceed(); }
  });
  document.getElementById("ready-go").addEventListener("click", proceed);
  document.getElementById("break-go").addEventListener("click", endBreak);
  document.getElementById("problem-retry").addEventListener("click", start);
  for (let i = 0; i < 3; i++) {  // odd-one-out's buttons (other trial types make their own: setLayout)
    document.getElementById("option-" + i).addEventListener("click", () => pick(i, "click"));
  }
  document.getElementById("rank-undo").addEventListener("click", () => undoRank(false));
  document.getElementById("rank-reset").addEventListener("click", () => undoRank(true));
  document.getElementById("rank-submit").addEventListener("click", () => submitRanking("click"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.repeat && !document.getElementById("break").hidden) {
      event.preventDefault();
      endBreak();
      return;
    }
    if (document.getElementById("trial").hidden || event.repeat) return;
    if (rankedTrial() && (event.key === "Backspace" || event.key === "Enter" || event.key === "Escape")) {
      event.preventDefault();
      if (event.key === "Enter") submitRanking("key"); else undoRank(event.key === "Escape");
      return;
    }
    // odd-one-out: keys 1..3 choose positions 0..2; anchor and ranked: key k the option at position k
    if (!/^[1-9]$/.test(event.key)) return;
    const position = Number(event.key) - 1 + firstOption();
    if (position < layout.n_shown) { event.preventDefault(); pick(position, "key"); }
  });
  start();
});
