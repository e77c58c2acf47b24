// Playback: decodes the server's frames to PCM and hands them to the playback worklet.
// Opus packets go through WebCodecs `AudioDecoder`; PCM16 frames are converted here. One
// utterance plays at a time; a new one (or `stop`) replaces the old at once.

// Opus decoders (WebCodecs included) put out 48 kHz whatever the stream was encoded at, so
// the page asks the server for 48 kHz in both codecs and plays at 48 kHz: no resampling here.
export const SAMPLE_RATE = 48000;

/** Whether this browser can decode raw Opus packets (WebCodecs). */
export async function opusSupported() {
  if (typeof AudioDecoder === "undefined") return false;
  try {
    const probe = await AudioDecoder.isConfigSupported(
      {codec: "opus", sampleRate: SAMPLE_RATE, numberOfChannels: 1});
    return Boolean(probe.supported);
  } catch {
    return false;
  }
}

export class Player {
  /**
   * @param {object} handlers onState({utterance, played, buffered, underruns, playing}),
   *   onDrained(utterance), onDecoded(utterance, samples), onError(message)
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.context = null;
    this.node = null;
    this.decoder = null;
    this.utterance = null;
    this.codec = null;
    this.jitterMs = 60;
    this.recording = []; // the current utterance's decoded audio, for "Save audio"
  }

  /** Create the AudioContext and worklet; call from a user gesture (autoplay rules). */
  async open() {
    if (this.context) {
      if (this.context.state !== "running") await this.context.resume();
      return;
    }
    this.context = new AudioContext({sampleRate: SAMPLE_RATE, latencyHint: "interactive"});
    await this.context.audioWorklet.addModule(new URL("./playback-worklet.js", import.meta.url));
    this.node = new AudioWorkletNode(this.context, "playback", {outputChannelCount: [1]});
    this.node.port.onmessage = (event) => {
      const msg = event.data;
      if (msg.type === "state") this.handlers.onState(msg);
      else if (msg.type === "drained") this.handlers.onDrained(msg.utterance);
    };
    this.node.connect(this.context.destination);
    this.setJitter(this.jitterMs);
    if (this.context.state !== "running") await this.context.resume();
  }

  setJitter(ms) {
    this.jitterMs = ms;
    this.node?.port.postMessage({type: "jitter", ms});
  }

  /** Start a new utterance: frames pushed from now on belong to it. */
  begin(utterance, codec) {
    this.closeDecoder();
    this.utterance = utterance;
    this.codec = codec;
    this.recording = [];
    if (codec === "opus") {
      this.decoder = new AudioDecoder({
        output: (data) => this.decoded(utterance, data),
        error: (err) => this.handlers.onError(`Opus decoder: ${err.message}`),
      });
      this.decoder.configure({codec: "opus", sampleRate: SAMPLE_RATE, numberOfChannels: 1});
    } else if (codec !== "pcm16") {
      throw new Error(`the page plays opus or pcm16, not ${codec}`);
    }
  }

  /** One `audio` message's frame (bytes) at `offsetMs` on the utterance's timeline. */
  push(utterance, bytes, offsetMs, durationMs) {
    if (utterance !== this.utterance) return;
    if (this.codec === "opus") {
      this.decoder.decode(new EncodedAudioChunk({
        type: "key", timestamp: Math.round(offsetMs * 1000),
        duration: Math.round(durationMs * 1000), data: bytes,
      }));
    } else {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const samples = new Float32Array(bytes.byteLength >> 1);
      for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(2 * i, true) / 32768;
      this.enqueue(utterance, samples);
    }
  }

  decoded(utterance, data) {
    if (data.sampleRate !== SAMPLE_RATE) {
      data.close();
      throw new Error(`the Opus decoder gave ${data.sampleRate} Hz, the page plays ${SAMPLE_RATE} Hz`);
    }
    const samples = new Float32Array(data.numberOfFrames);
    data.copyTo(samples, {planeIndex: 0, format: "f32-planar"});
    data.close();
    if (utterance === this.utterance) this.enqueue(utterance, samples);
  }

  enqueue(utterance, samples) {
    this.recording.push(samples.slice()); // a copy: the original moves to the audio thread
    this.handlers.onDecoded(utterance, samples.length);
    this.node.port.postMessage({type: "push", utterance, samples}, [samples.buffer]);
  }

  /** No more audio comes for this utterance: play out what is queued, then `onDrained`. */
  async end(utterance) {
    if (utterance !== this.utterance) return;
    if (this.decoder && this.decoder.state === "configured") {
      try {
        await this.decoder.flush();
      } catch (err) {
        // An interrupt closed the decoder while it flushed: that utterance is gone anyway.
        if (utterance === this.utterance) throw err;
        return;
      }
    }
    if (utterance === this.utterance) this.node.port.postMessage({type: "end", utterance});
  }

  /** The utterance's decoded audio so far as a 16-bit mono WAV file. */
  wav() {
    const n = this.recording.reduce((sum, chunk) => sum + chunk.length, 0);
    const view = new DataView(new ArrayBuffer(44 + 2 * n));
    const text = (at, s) => [...s].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
    text(0, "RIFF");
    view.setUint32(4, 36 + 2 * n, true);
    text(8, "WAVEfmt ");
    view.setUint32(16, 16, true);
    view.setUint16(20, 1, true); // PCM
    view.setUint16(22, 1, true); // mono
    view.setUint32(24, SAMPLE_RATE, true);
    view.setUint32(28, 2 * SAMPLE_RATE, true);
    view.setUint16(32, 2, true);
    view.setUint16(34, 16, true);
    text(36, "data");
    view.setUint32(40, 2 * n, true);
    let at = 44;
    for (const chunk of this.recording) {
      for (const x of chunk) {
        view.setInt16(at, Math.round(Math.max(-1, Math.min(1, x)) * 32767), true);
        at += 2;
      }
    }
    return new Blob([view.buffer], {type: "audio/wav"});
  }

  /** Interrupt: silence now and forget the utterance. */
  stop() {
    this.closeDecoder();
    this.utterance = null;
    this.node?.port.postMessage({type: "stop"});
  }

  closeDecoder() {
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
    this.decoder = null;
  }
}
