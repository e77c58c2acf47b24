// AudioWorklet processor: plays queued PCM gaplessly behind a small jitter buffer and counts
// underruns. It runs on the audio thread; the page talks to it through `port`:
//   page -> worklet  {type: "push", utterance, samples: Float32Array}  audio to play
//                    {type: "end", utterance}     no more audio will come for this utterance
//                    {type: "stop"}               interrupt: drop everything queued at once
//                    {type: "jitter", ms}         how much audio to hold before (re)starting
//   worklet -> page  {type: "state", utterance, played, buffered, underruns, playing}
//                    (about every 25 ms while there is something to report, and on changes)
//                    {type: "drained", utterance} the last sample of an ended utterance played
// `played` counts samples of the utterance's own audio that reached the output, so it is the
// position on the server's context timeline (`offset_ms`), which is what `cancel` wants.

const REPORT_EVERY = 5; // render quanta of 128 frames: ~27 ms at 24 kHz

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];          // Float32Array chunks not yet played
    this.head = 0;            // read position inside queue[0]
    this.buffered = 0;        // samples in the queue
    this.utterance = null;    // id of the utterance being played
    this.ended = false;       // the page said no more audio comes for it
    this.playing = false;     // false: buffering until the jitter target is reached
    this.played = 0;
    this.underruns = 0;
    this.jitter = Math.round(0.06 * sampleRate);
    this.quanta = 0;
    this.port.onmessage = (event) => this.command(event.data);
  }

  command(msg) {
    if (msg.type === "push") {
      if (msg.utterance !== this.utterance) this.reset(msg.utterance);
      this.queue.push(msg.samples);
      this.buffered += msg.samples.length;
    } else if (msg.type === "end") {
      if (msg.utterance === this.utterance) this.ended = true;
    } else if (msg.type === "stop") {
      this.reset(null);
      this.report();
    } else if (msg.type === "jitter") {
      this.jitter = Math.max(0, Math.round((msg.ms / 1000) * sampleRate));
    }
  }

  reset(utterance) {
    this.queue = [];
    this.head = 0;
    this.buffered = 0;
    this.utterance = utterance;
    this.ended = false;
    this.playing = false;
    this.played = 0;
  }

  report() {
    this.port.postMessage({
      type: "state", utterance: this.utterance, played: this.played,
      buffered: this.buffered, underruns: this.underruns, playing: this.playing,
    });
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    out.fill(0);
    if (this.utterance === null) return true;
    if (!this.playing && (this.buffered >= this.jitter || (this.ended && this.buffered > 0))) {
      this.playing = true;
    }
    let written = 0;
    while (this.playing && written < out.length && this.queue.length > 0) {
      const chunk = this.queue[0];
      const n = Math.min(out.length - written, chunk.length - this.head);
      out.set(chunk.subarray(this.head, this.head + n), written);
      written += n;
      this.head += n;
      if (this.head === chunk.length) {
        this.queue.shift();
        this.head = 0;
      }
    }
    this.played += written;
    this.buffered -= written;
    if (this.playing && this.buffered === 0) {
      if (this.ended) {
        this.port.postMessage({type: "drained", utterance: this.utterance});
        this.utterance = null;
        this.playing = false;
      } else {
        // Ran dry before the utterance's last sample: an underrun. Re-buffer before resuming.
        this.underruns += 1;
        this.playing = false;
      }
      this.report();
    } else if (++this.quanta % REPORT_EVERY === 0) {
      this.report();
    }
    return true;
  }
}

registerProcessor("playback", PlaybackProcessor);
