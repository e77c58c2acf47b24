// The page: settings, the utterance being spoken, and the live figures. Protocol in
// connection.js, audio in player.js, the word timeline in timeline.js, the voice and language
// menus in voices.js.

import {CLOSE_CODES, Connection, defaultStreamUrl, tokenize} from "./connection.js";
import {Player, SAMPLE_RATE, opusSupported} from "./player.js";
import {Timeline} from "./timeline.js";
import {autoLanguage, languageName, languageOptions, voiceInfo, voiceOptions} from "./voices.js";

const $ = (id) => document.getElementById(id);
const ui = {
  url: $("url"), token: $("token"), connect: $("connect"), status: $("status"),
  voice: $("voice"), voice2: $("voice2"), mix: $("mix"), mixValue: $("mix-value"),
  language: $("language"), languageRow: $("language-row"), languageHint: $("language-hint"),
  speed: $("speed"), speedValue: $("speed-value"), codec: $("codec"), rate: $("rate"),
  jitter: $("jitter"), text: $("text"), speak: $("speak"), stream: $("stream"),
  interrupt: $("interrupt"), save: $("save"), state: $("utterance-state"), chunks: $("chunks"), events: $("events"),
  figures: {
    ttfaPage: $("ttfa-page"), ttfaServer: $("ttfa-server"), inference: $("inference"),
    batch: $("batch"), rtf: $("rtf"), decoded: $("decoded"), played: $("played"),
    underruns: $("underruns"),
  },
};

const connection = new Connection({onReady: ready, onMessage: message, onClose: closed});
const player = new Player({
  onState: playbackState, onDrained: drained, onDecoded: decodedSamples, onError: fail,
});
const timeline = new Timeline($("track"), $("playhead"), $("transcript"));

let utterance = null;  // the utterance on screen (one at a time)
let counter = 0;
let lastId = null;     // the utterance "Save audio" saves (the last one, even once finished)
let underrunsBefore = 0; // the worklet's count is per page; figures are per utterance
let underrunsNow = 0;
let voices = new Map(); // ready.voice_info by name (empty from an older server)

// -- connection ---------------------------------------------------------------------------------
function connect() {
  setStatus("connecting…");
  connection.connect(ui.url.value, ui.token.value.trim());
}

async function ready(msg) {
  const defaultVoice = msg.defaults?.voice;
  voices = voiceInfo(msg);
  fillSelect(ui.voice, voiceOptions(msg.voices, voices, defaultVoice), ui.voice.value || defaultVoice);
  fillSelect(ui.voice2, voiceOptions(msg.voices, voices, defaultVoice, "none"), ui.voice2.value);
  const languages = Array.isArray(msg.languages) ? msg.languages : [];
  fillSelect(ui.language, languageOptions(languages), ui.language.value || msg.defaults?.language);
  ui.languageRow.hidden = languages.length === 0; // an older server: its voice's language
  showAutoLanguage();
  const limits = msg.limits ?? {};
  ui.speed.min = limits.min_speed ?? 0.5;
  ui.speed.max = limits.max_speed ?? 2;
  const opus = msg.codecs.includes("opus") && (await opusSupported());
  ui.codec.querySelector('option[value="opus"]').disabled = !opus;
  ui.codec.querySelector('option[value="opus"]').textContent =
    opus ? "Opus (WebCodecs)" : "Opus (needs WebCodecs)";
  if (!opus) ui.codec.value = "pcm16";
  setStatus(`connected · session ${msg.session_id.slice(0, 8)} · ${msg.voices.length} voices`, "ok");
  ui.connect.textContent = "Reconnect";
  log("ready", `protocol ${msg.protocol}, voices ${msg.voices.join(", ")}`);
  setBusy(false);
}

function closed(code, reason) {
  const meaning = CLOSE_CODES[code] ?? "closed";
  setStatus(`disconnected: ${code} ${meaning}${reason ? ` (${reason})` : ""}`, code === 1000 ? "" : "bad");
  log("close", `${code} ${meaning}${reason ? `: ${reason}` : ""}`);
  if (utterance) finish("closed");
  player.stop();
  ui.connect.textContent = "Connect";
  setBusy(false);
}

/** Replace a select's options (or optgroups); keep `chosen` if it is still one of them. */
function fillSelect(select, children, chosen) {
  select.replaceChildren(...children);
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

/** Beside the language select: the language "auto" reads the chosen voice (or blend) in. */
function showAutoLanguage() {
  const code = autoLanguage(voices, ui.voice.value, ui.voice2.value, Number(ui.mix.value));
  ui.languageHint.dataset.language = code ?? "";
  ui.languageHint.textContent = code ? `auto reads this voice as ${languageName(code)}` : "";
}

// -- utterances ---------------------------------------------------------------------------------
function voiceSetting() {
  const first = ui.voice.value;
  const second = ui.voice2.value;
  const mix = Number(ui.mix.value);
  if (!second || mix === 0) return first;
  if (mix === 100) return second;
  return `${first}(${100 - mix})+${second}(${mix})`;
}

async function begin(mode) {
  const text = ui.text.value;
  if (!text.trim()) {
    setStatus("type something to say first", "bad");
    return;
  }
  if (!connection.open) {
    setStatus("not connected: press Connect", "bad");
    return;
  }
  if (utterance) interrupt();
  await player.open(); // inside the click: browsers only start audio from a user gesture
  player.setJitter(Number(ui.jitter.value));
  counter += 1;
  const codec = ui.codec.value;
  utterance = {
    id: `u${counter}`, mode, text, codec, sent: "", t0: 0, firstAudio: null,
    decoded: 0, played: 0, chunks: [], timer: null,
  };
  underrunsBefore = underrunsNow;
  ui.save.disabled = true;
  lastId = utterance.id;
  resetFigures();
  timeline.clear(mode === "speak" ? text : "");
  player.begin(utterance.id, codec);
  connection.send({
    type: "start", context_id: utterance.id, voice: voiceSetting(), speed: Number(ui.speed.value),
    codec, sample_rate: SAMPLE_RATE, timestamps: "word",
    ...(ui.languageRow.hidden ? {} : {language: ui.language.value}),
  });
  utterance.t0 = performance.now();
  if (mode === "speak") {
    sendText(text);
    connection.send({type: "end", context_id: utterance.id});
  } else {
    streamTokens(utterance, tokenize(text), Number(ui.rate.value));
  }
  setState("sending");
  setBusy(true);
}

function sendText(delta) {
  utterance.sent += delta;
  connection.send({type: "text", context_id: utterance.id, text: delta});
}

/** Send token deltas at `perSecond`, as an LLM would, then `end`. */
function streamTokens(u, tokens, perSecond) {
  const interval = 1000 / Math.max(1, perSecond);
  let i = 0;
  const next = () => {
    if (utterance !== u || !connection.open) return;
    sendText(tokens[i]);
    timeline.setText(u.sent);
    i += 1;
    if (i < tokens.length) {
      // Scheduled from t0 so that timer jitter does not slow the stream down.
      u.timer = setTimeout(next, Math.max(0, u.t0 + i * interval - performance.now()));
    } else {
      u.timer = null;
      connection.send({type: "end", context_id: u.id});
    }
  };
  next();
}

function interrupt() {
  const u = utterance;
  if (!u) return;
  clearTimeout(u.timer);
  player.stop();
  if (connection.open) {
    connection.send({type: "cancel", context_id: u.id, played_ms: Math.round(u.played)});
  }
  finish("interrupted");
}

function finish(state) {
  if (!utterance) return;
  clearTimeout(utterance.timer);
  setState(state);
  utterance = null;
  setBusy(false);
}

// -- server messages ----------------------------------------------------------------------------
function message(msg) {
  const mine = utterance && msg.context_id === utterance.id;
  switch (msg.type) {
    case "audio":
      if (!mine) return;
      if (utterance.firstAudio === null) {
        utterance.firstAudio = performance.now() - utterance.t0;
        show("ttfaPage", utterance.firstAudio, "ms");
        setState("playing");
      }
      player.push(utterance.id, msg.data, msg.offset_ms, msg.duration_ms);
      return;
    case "alignment":
      if (mine) timeline.add(msg.words);
      return;
    case "metrics":
      if (mine) chunkMetrics(msg);
      return;
    case "done":
      log("done", `${msg.context_id}: ${Math.round(msg.audio_ms)} ms of audio in ${msg.chunks} chunks`);
      if (mine) {
        setState("done");
        player.end(utterance.id).catch(fail);
      }
      return;
    case "cancelled":
      log("cancelled", `${msg.context_id}: ${Math.round(msg.audio_sent_ms)} ms sent; spoken “${msg.text_spoken}”, ` +
          `unspoken “${msg.text_unspoken}”`);
      return;
    case "error":
      log("error", `${msg.code}: ${msg.message}${msg.context_id ? ` (${msg.context_id})` : ""}`);
      setStatus(`server error ${msg.code}: ${msg.message}`, "bad");
      if (mine) {
        player.stop();
        finish("failed");
      }
      return;
    default:
      log(msg.type, JSON.stringify(msg));
  }
}

function chunkMetrics(msg) {
  const u = utterance;
  u.chunks.push(msg);
  if (msg.first_audio_ms !== undefined) show("ttfaServer", msg.first_audio_ms, "ms");
  show("inference", msg.inference_ms, "ms");
  show("batch", msg.batch_size, "");
  const audio = u.chunks.reduce((s, c) => s + c.audio_ms, 0);
  const work = u.chunks.reduce((s, c) => s + c.inference_ms, 0);
  show("rtf", audio > 0 ? work / audio : 0, "", 3);
  const row = document.createElement("tr");
  for (const value of [msg.chunk, msg.text.trim(), fmt(msg.queued_ms), fmt(msg.inference_ms),
                       msg.batch_size, fmt(msg.audio_ms), fmt(msg.rtf, 3)]) {
    const cell = document.createElement("td");
    cell.textContent = value;
    row.appendChild(cell);
  }
  ui.chunks.appendChild(row);
}

// -- playback -----------------------------------------------------------------------------------
function decodedSamples(id, samples) {
  if (!utterance || id !== utterance.id) return;
  utterance.decoded += samples;
  ui.save.disabled = false;
  show("decoded", (utterance.decoded / SAMPLE_RATE) * 1000, "ms");
}

function playbackState(state) {
  underrunsNow = state.underruns;
  show("underruns", underrunsNow - underrunsBefore, "");
  if (!utterance || state.utterance !== utterance.id) return;
  utterance.played = (state.played / SAMPLE_RATE) * 1000;
  show("played", utterance.played, "ms");
  timeline.highlight(utterance.played);
}

function drained(id) {
  if (!utterance || id !== utterance.id) return;
  timeline.highlight(Number.POSITIVE_INFINITY);
  finish("played");
}

function fail(err) {
  const text = err instanceof Error ? err.message : String(err);
  console.error(text);
  log("error", text);
  setStatus(text, "bad");
}

/** Download the last utterance's decoded audio (all of it, even past an interrupt) as WAV. */
function save() {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(player.wav());
  link.download = `realtime-${lastId}.wav`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

// -- display ------------------------------------------------------------------------------------
function fmt(value, digits = 0) {
  return Number(value).toFixed(digits);
}

function show(name, value, unit, digits = 0) {
  const el = ui.figures[name];
  el.dataset.value = String(value);
  el.textContent = `${fmt(value, digits)}${unit ? ` ${unit}` : ""}`;
}

function resetFigures() {
  for (const el of Object.values(ui.figures)) {
    delete el.dataset.value;
    el.textContent = "–";
  }
  show("underruns", 0, "");
  ui.chunks.replaceChildren();
}

function setState(state) {
  ui.state.dataset.state = state;
  ui.state.textContent = state;
}

function setStatus(text, kind = "") {
  ui.status.textContent = text;
  ui.status.className = kind;
}

function setBusy(busy) {
  ui.interrupt.disabled = !busy;
  ui.speak.disabled = !connection.open;
  ui.stream.disabled = !connection.open;
}

function log(type, text) {
  const item = document.createElement("li");
  item.dataset.type = type;
  const tag = document.createElement("b");
  tag.textContent = type;
  item.append(tag, ` ${text}`);
  ui.events.prepend(item);
  while (ui.events.children.length > 100) ui.events.lastChild.remove();
}

// -- wiring -------------------------------------------------------------------------------------
ui.url.value = defaultStreamUrl(window.location);
ui.connect.addEventListener("click", connect);
ui.speak.addEventListener("click", () => begin("speak").catch(fail));
ui.stream.addEventListener("click", () => begin("stream").catch(fail));
ui.interrupt.addEventListener("click", interrupt);
ui.save.addEventListener("click", save);
ui.mix.addEventListener("input", () => {
  ui.mixValue.textContent = `${ui.mix.value}%`;
  showAutoLanguage();
});
ui.voice.addEventListener("change", showAutoLanguage);
ui.voice2.addEventListener("change", showAutoLanguage);
ui.speed.addEventListener("input", () => {
  ui.speedValue.textContent = `${Number(ui.speed.value).toFixed(2)}×`;
});
ui.jitter.addEventListener("change", () => player.setJitter(Number(ui.jitter.value)));
setBusy(false);
connect();
