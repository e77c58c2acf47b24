// The word timeline: every word of the utterance placed on the audio's time axis (from the
// server's `alignment`), and the transcript, both highlighted as the audio is heard.

const PX_PER_SECOND = 160;

export class Timeline {
  constructor(track, playhead, transcript) {
    this.track = track;
    this.playhead = playhead;
    this.transcript = transcript;
    this.clear("");
  }

  /** Start an utterance; `text` is what the page sends (alignment's char offsets index it). */
  clear(text) {
    this.words = [];
    this.playedMs = 0;
    this.chars = Array.from(text); // code points: the server counts characters that way
    this.track.querySelectorAll(".word").forEach((el) => el.remove());
    this.transcript.replaceChildren(document.createTextNode(text));
    this.playhead.style.left = "0px";
    this.track.style.width = "100%";
  }

  /** The text grew (streaming): keep the transcript whole. */
  setText(text) {
    this.chars = Array.from(text);
    this.renderTranscript();
  }

  /** Words of one `alignment` message. */
  add(words) {
    for (const w of words) {
      const block = document.createElement("span");
      block.className = "word";
      block.textContent = w.word;
      block.title = `${w.word}: ${Math.round(w.start_ms)}–${Math.round(w.end_ms)} ms`;
      block.style.left = `${(w.start_ms / 1000) * PX_PER_SECOND}px`;
      block.style.width = `${Math.max(2, ((w.end_ms - w.start_ms) / 1000) * PX_PER_SECOND)}px`;
      this.track.appendChild(block);
      this.words.push({...w, block, span: null});
    }
    const last = this.words.at(-1);
    if (last) this.track.style.width = `${Math.max(this.track.parentElement.clientWidth,
                                                  (last.end_ms / 1000 + 0.5) * PX_PER_SECOND)}px`;
    this.renderTranscript();
  }

  renderTranscript() {
    const parts = [];
    let at = 0;
    for (const w of this.words) {
      if (w.char_start < at) continue;
      if (w.char_start > at) parts.push(document.createTextNode(this.chars.slice(at, w.char_start).join("")));
      const span = document.createElement("span");
      span.className = "word";
      span.textContent = this.chars.slice(w.char_start, w.char_end).join("");
      w.span = span;
      parts.push(span);
      at = w.char_end;
    }
    if (at < this.chars.length) parts.push(document.createTextNode(this.chars.slice(at).join("")));
    this.transcript.replaceChildren(...parts);
    this.highlight(this.playedMs);
  }

  /** Highlight by the audio heard so far (ms on the utterance's timeline). */
  highlight(playedMs) {
    this.playedMs = playedMs;
    this.playhead.style.left = `${(playedMs / 1000) * PX_PER_SECOND}px`;
    for (const w of this.words) {
      const state = playedMs >= w.end_ms ? "heard" : playedMs >= w.start_ms ? "now" : "";
      for (const el of [w.block, w.span]) {
        if (!el) continue;
        el.classList.toggle("heard", state === "heard");
        el.classList.toggle("now", state === "now");
      }
    }
    const now = this.words.find((w) => w.block.classList.contains("now"));
    if (now) {
      const viewport = this.track.parentElement;
      const x = (now.start_ms / 1000) * PX_PER_SECOND;
      if (x < viewport.scrollLeft || x > viewport.scrollLeft + viewport.clientWidth - 60) {
        viewport.scrollLeft = Math.max(0, x - 40);
      }
    }
  }
}
