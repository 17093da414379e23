/** MAC text ⇄ bytes: exactly six colon-separated hex pairs, either case; everything else refused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatMac, parseMac } from '../../src/util/mac.js';

test('parseMac reads six hex pairs in either case and formatMac writes them back in lowercase', () => {
  assert.deepEqual([...parseMac('02:42:ac:11:00:02')!], [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
  assert.deepEqual([...parseMac('FF:fe:0A:b0:C9:9d')!], [0xff, 0xfe, 0x0a, 0xb0, 0xc9, 0x9d]);
  assert.equal(formatMac(parseMac('FF:fe:0A:b0:C9:9d')), 'ff:fe:0a:b0:c9:9d');
  assert.equal(formatMac(Buffer.from([0, 1, 0x10, 0xff, 0x7f, 0x80])), '00:01:10:ff:7f:80');
  assert.equal(formatMac(undefined), '');
  for (let b = 0; b < 256; b++) {
    const text = formatMac(Buffer.from([b, 255 - b, b, 0, 1, b]));
    assert.equal(formatMac(parseMac(text)), text);
  }
});

test('parseMac refuses anything but six colon-separated pairs', () => {
  for (const bad of ['', '02:42:ac:11:00', '02:42:ac:11:00:02:03', '02:42:ac:11:00:2', '02:42:ac:11:00:022', '02-42-ac-11-00-02',
    '0g:42:ac:11:00:02', '02:42:ac:11:00:0G', ' 2:42:ac:11:00:02', '02:42:ac:11:00:02 ', '02:42::c:11:00:02', '024:2a:c1:10:00:2x']) {
    assert.equal(parseMac(bad), undefined, JSON.stringify(bad));
  }
});
