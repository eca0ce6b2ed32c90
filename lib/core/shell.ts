/**
 * Quoting for the shell lines the runner prints or stores (a manifest's by-hand lines, `dbbackup
 * runbook`): every value that comes from a manifest, a URL or a flag is one shell word, whatever
 * it holds (`$(...)`, `;`, quotes, spaces, newlines).
 */

/** Control characters (a newline would end a line or a `# comment`, and could close a markdown fence). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const CONTROL = /[\u0000-\u001f\u007f]/g;

/**
 * `s` as one POSIX shell word: unchanged when it holds only characters no shell treats
 * specially, else in single quotes (a `'` inside written `'\''`). Control characters are shown
 * as `?` (inside quotes, a literal character): the printed line stays one line.
 */
export function shellQuote(s: string): string {
  const v = s.replace(CONTROL, '?');
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

/** `s` for a one-line place (a `# comment` in a shell line, a markdown line): control characters as `?`. */
export function oneLine(s: string): string {
  return s.replace(CONTROL, '?');
}
