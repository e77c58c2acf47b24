// The voice and language menus, built from the server's `ready`: voices grouped by family
// (`ready.voice_info`), languages by readable name (`ready.languages`). An older server sends
// neither: the voices are then a flat list, and there is no language to choose.

/** Readable names of the languages the server reads (codes as on the wire). */
export const LANGUAGE_NAMES = {
  "en-us": "English (US)", "en-gb": "English (UK)", es: "Spanish", "fr-fr": "French",
  hi: "Hindi", it: "Italian", "pt-br": "Portuguese (Brazil)",
};
export const AUTO = "auto"; // a context's language: the one its voice's name says
const OTHER = "Other"; // the family of names outside Kokoro's scheme

export function languageName(code) {
  return LANGUAGE_NAMES[code] ?? code;
}

/** `ready.voice_info` by name; empty for a server that does not send it. */
export function voiceInfo(ready) {
  const infos = ready.voice_info;
  if (!Array.isArray(infos) || infos.length !== ready.voices.length) return new Map();
  return new Map(infos.map((info) => [info.name, info]));
}

/**
 * Voices in families, `[[family, [info, ...]], ...]`: the family of `first` (the default
 * voice) first, then the others alphabetically, "Other" last. Voices keep the server's order.
 */
export function voiceGroups(infos, first) {
  const families = new Map();
  for (const info of infos) {
    if (!families.has(info.family)) families.set(info.family, []);
    families.get(info.family).push(info);
  }
  const lead = infos.find((info) => info.name === first)?.family;
  const rank = (family) => (family === lead ? 0 : family === OTHER ? 2 : 1);
  return [...families].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
}

export function voiceLabel(info) {
  return info.gender === "female" || info.gender === "male" ? `${info.name} (${info.gender})` : info.name;
}

/**
 * The children of a voice select: an `<optgroup>` per family, or plain options when `info` is
 * empty (an older server). `none` adds a first option for "no voice" (value "").
 */
export function voiceOptions(names, info, first, none = null) {
  const head = none === null ? [] : [new Option(none, "")];
  if (info.size === 0) return [...head, ...names.map((name) => new Option(name, name))];
  const groups = voiceGroups(names.map((name) => info.get(name)), first).map(([family, voices]) => {
    const group = document.createElement("optgroup");
    group.label = family;
    group.append(...voices.map((v) => new Option(voiceLabel(v), v.name)));
    return group;
  });
  return [...head, ...groups];
}

/** The options of the language select: "auto" first, each code by its readable name. */
export function languageOptions(codes) {
  return codes.map((code) => new Option(
    code === AUTO ? "auto (voice's language)" : `${languageName(code)} · ${code}`, code));
}

/**
 * The language "auto" reads a voice setting in: that of its heaviest voice, the first on a tie
 * (as the server does for a blend). `mix` is the second voice's share in percent.
 */
export function autoLanguage(info, first, second, mix) {
  const voice = second && mix > 50 ? second : first;
  return info.get(voice)?.language ?? null;
}
