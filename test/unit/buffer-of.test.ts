// bufferOf: a Buffer with the same bytes, whichever way it gets them.
import test from "ava";
import { bufferOf } from "../../host/buffer-of.js";

test("a Buffer is returned as it is", (t) => {
  const buffer = Buffer.from("hello");
  t.is(bufferOf(buffer), buffer);
});

test("small and large arrays, whole or a part of a larger buffer, give their own bytes and no more", (t) => {
  for (const length of [0, 1, 24, 64, 65, 4096]) {
    const backing = new Uint8Array(length + 10).map((_, i) => (i * 7) & 0xff);
    const part = backing.subarray(5, 5 + length);
    const whole = backing.slice(5, 5 + length);
    for (const bytes of [part, whole]) {
      const buffer = bufferOf(bytes);
      t.true(Buffer.isBuffer(buffer));
      t.is(buffer.length, length);
      t.deepEqual([...buffer], [...bytes], `length ${length}`);
    }
  }
});

test("a large array is viewed, not copied (no copy for what already lives off-heap)", (t) => {
  const bytes = new Uint8Array(1000).fill(1);
  const buffer = bufferOf(bytes);
  bytes[0] = 9;
  t.is(buffer[0], 9);
});
