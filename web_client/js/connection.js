// The WebSocket side of protocol v1 (docs/protocol.md) in JSON framing: text frames carry one
// JSON object, and `audio.data` is base64. The page needs no msgpack library that way.

/** Close codes the server uses, in words (protocol v1). */
export const CLOSE_CODES = {
  1000: "normal", 1001: "server draining", 1003: "unsupported data",
  1006: "connection lost", 1007: "invalid payload", 1008: "refused by policy (token, origin or rate)",
  1009: "message too big", 1011: "server error", 1013: "server full, try again later",
};

export function defaultStreamUrl(location) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/v1/stream`;
}

function base64Bytes(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

export class Connection {
  /**
   * @param {object} handlers onReady(ready), onMessage(msg), onClose(code, reason)
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.ws = null;
    this.ready = null;
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.ready !== null;
  }

  connect(url, token) {
    this.close();
    const target = new URL(url);
    target.searchParams.set("framing", "json");
    if (token) target.searchParams.set("token", token);
    const ws = new WebSocket(target);
    this.ws = ws;
    this.ready = null;
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") return; // JSON framing: the server sends text only
      const msg = JSON.parse(event.data);
      if (msg.type === "audio") msg.data = base64Bytes(msg.data);
      if (msg.type === "ready") {
        this.ready = msg;
        this.handlers.onReady(msg);
      } else {
        this.handlers.onMessage(msg);
      }
    };
    ws.onclose = (event) => {
      if (this.ws === ws) {
        this.ws = null;
        this.ready = null;
        this.handlers.onClose(event.code, event.reason);
      }
    };
  }

  send(message) {
    if (!this.open) throw new Error("not connected");
    this.ws.send(JSON.stringify(message));
  }

  close() {
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      this.ready = null;
      ws.close(1000);
    }
  }
}

/**
 * Split text into LLM-like token deltas: a word with its leading space, words over 6
 * characters cut into pieces of 4, punctuation on its own. Joined, the deltas give `text` back.
 */
export function tokenize(text) {
  const tokens = [];
  for (const match of text.matchAll(/\s*(?:[\p{L}\p{N}'’]+|[^\s\p{L}\p{N}]+)|\s+$/gu)) {
    const piece = match[0];
    if (piece.length <= 6) {
      tokens.push(piece);
      continue;
    }
    for (let start = 0; start < piece.length; start += 4) tokens.push(piece.slice(start, start + 4));
  }
  return tokens;
}
