/** MAC addresses between their text (02:42:ac:11:00:02) and their six bytes. */

/** Two lowercase hex digits for each byte value. */
const HEX_PAIRS = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

export function formatMac(value: Buffer | undefined): string {
  if (value === undefined) return '';
  let text = '';
  for (let i = 0; i < value.length; i++) text += (i === 0 ? '' : ':') + HEX_PAIRS[value[i]!]!;
  return text;
}

/** Six colon-separated pairs of hex digits (either case), as bytes; anything else is undefined. */
export function parseMac(text: string): Buffer | undefined {
  if (text.length !== 17) return undefined;
  const bytes = Buffer.allocUnsafe(6);
  for (let i = 0; i < 6; i++) {
    const at = i * 3;
    if (i < 5 && text.charCodeAt(at + 2) !== 58 /* : */) return undefined;
    const high = hexDigit(text.charCodeAt(at));
    const low = hexDigit(text.charCodeAt(at + 1));
    if (high < 0 || low < 0) return undefined;
    bytes[i] = high * 16 + low;
  }
  return bytes;
}

function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 97 && code <= 102) return code - 87; // a-f
  if (code >= 65 && code <= 70) return code - 55; // A-F
  return -1;
}
