// Tests for lm/safetensors.ts: round trips, byte-exact agreement with the reference implementation, corrupt input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeSafetensors, encodeSafetensors, MAX_HEADER_BYTES, type TensorMap } from '../lm/safetensors.js';

// Produced by the reference implementation (Python safetensors 0.8.0, `safetensors.serialize`) for
// a = 0.5 (shape []), b = [1.0, -2.5] (shape [2]), metadata {"format": "pt"}.
const REFERENCE_HEX =
  '9000000000000000' +
  Buffer.from(
    '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},' +
      '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}      ',
  ).toString('hex') +
  '0000003f' +
  '0000803f' +
  '000020c0';

function referenceTensors(): TensorMap {
  return new Map([
    ['b', { shape: [2], data: new Float32Array([1.0, -2.5]) }],
    ['a', { shape: [], data: new Float32Array([0.5]) }],
  ]);
}

/** Builds a file from a header object and raw data bytes, for feeding hand-made (possibly invalid) input. */
function fileFrom(header: unknown, data: Uint8Array, headerLengthOverride?: bigint): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(headerLengthOverride ?? BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);

describe('safetensors encode/decode', () => {
  it('round-trips scalars, single elements, odd and empty shapes with metadata', () => {
    const tensors: TensorMap = new Map([
      ['scalar', { shape: [], data: new Float32Array([3.25]) }],
      ['one', { shape: [1], data: new Float32Array([-1]) }],
      ['odd', { shape: [3, 5], data: Float32Array.from({ length: 15 }, (_, i) => i * 0.1 - 0.7) }],
      ['seven', { shape: [7], data: new Float32Array([NaN, Infinity, -Infinity, -0, 1e-45, 3.4e38, 2]) }],
      ['empty', { shape: [0, 4], data: new Float32Array(0) }],
    ]);
    const bytes = encodeSafetensors(tensors, { note: 'héllo', step: '7' });
    const decoded = decodeSafetensors(bytes);
    assert.deepEqual(decoded.metadata, { note: 'héllo', step: '7' });
    assert.deepEqual([...decoded.tensors.keys()], ['empty', 'odd', 'one', 'scalar', 'seven']);
    for (const [name, tensor] of tensors) {
      const got = decoded.tensors.get(name)!;
      assert.deepEqual(got.shape, tensor.shape, name);
      // Compare bytes so NaN and -0 count as preserved.
      assert.deepEqual(
        Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength),
        Buffer.from(tensor.data.buffer),
        name,
      );
    }
  });

  it('pads the header to a multiple of 8 so the data section is aligned', () => {
    const bytes = encodeSafetensors(new Map([['x', { shape: [3], data: new Float32Array([1, 2, 3]) }]]));
    const headerLength = Number(bytes.readBigUInt64LE(0));
    assert.equal(headerLength % 8, 0);
    assert.equal(bytes.byteLength, 8 + headerLength + 12);
    assert.equal(
      bytes
        .subarray(8, 8 + headerLength)
        .toString()
        .trimEnd(),
      JSON.stringify({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } }),
    );
  });

  it("writes the same bytes whatever the map's insertion order", () => {
    const forward = encodeSafetensors(
      new Map([
        ['a', { shape: [1], data: new Float32Array([1]) }],
        ['b', { shape: [1], data: new Float32Array([2]) }],
      ]),
    );
    const backward = encodeSafetensors(
      new Map([
        ['b', { shape: [1], data: new Float32Array([2]) }],
        ['a', { shape: [1], data: new Float32Array([1]) }],
      ]),
    );
    assert.deepEqual(forward, backward);
  });

  it('decodes a file written by the reference implementation', () => {
    const decoded = decodeSafetensors(Buffer.from(REFERENCE_HEX, 'hex'));
    assert.deepEqual(decoded.metadata, { format: 'pt' });
    assert.deepEqual(decoded.tensors.get('a'), { shape: [], data: new Float32Array([0.5]) });
    assert.deepEqual(decoded.tensors.get('b'), { shape: [2], data: new Float32Array([1.0, -2.5]) });
  });

  it('encodes byte-for-byte what the reference implementation writes', () => {
    assert.equal(encodeSafetensors(referenceTensors(), { format: 'pt' }).toString('hex'), REFERENCE_HEX);
  });

  it('encodes F16 byte-for-byte as the reference implementation does (rounded to nearest, subnormals kept)', () => {
    // safetensors 0.8.0's safetensors.numpy.save of float16 a = 0.5, b = [1, -2.5, 65504, 6e-8], metadata {"format": "pt"}.
    const header =
      '{"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[],"data_offsets":[0,2]},' +
      '"b":{"dtype":"F16","shape":[4],"data_offsets":[2,10]}}      ';
    const expected = '9000000000000000' + Buffer.from(header).toString('hex') + '0038' + '003c00c1ff7b0100';
    const tensors: TensorMap = new Map([
      ['a', { shape: [], data: new Float32Array([0.5]) }],
      ['b', { shape: [4], data: new Float32Array([1, -2.5, 65504, 6e-8]) }],
    ]);
    assert.equal(encodeSafetensors(tensors, { format: 'pt' }, 'F16').toString('hex'), expected);
  });

  it('decodes from a buffer that is not 4-byte aligned', () => {
    const reference = Buffer.from(REFERENCE_HEX, 'hex');
    const shifted = new Uint8Array(reference.byteLength + 1).subarray(1);
    shifted.set(reference);
    assert.deepEqual(decodeSafetensors(shifted).tensors.get('b')!.data, new Float32Array([1.0, -2.5]));
  });
});

describe('safetensors decode errors', () => {
  const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };

  it('rejects a truncated file, naming the tensor that runs off the end', () => {
    const reference = Buffer.from(REFERENCE_HEX, 'hex');
    assert.throws(() => decodeSafetensors(reference.subarray(0, reference.byteLength - 1), 'model.safetensors'), {
      message: 'model.safetensors: tensor "b" ends at byte 12, past the 11-byte data section (truncated?)',
    });
  });

  it('rejects a file shorter than the length field', () => {
    assert.throws(() => decodeSafetensors(new Uint8Array(5)), /file is 5 bytes, too short/);
  });

  it('rejects a header length past the end of the file', () => {
    assert.throws(
      () => decodeSafetensors(fileFrom(ok, f32([1, 2]), 1000n)),
      /header length 1000 runs past the end of the \d+-byte file/,
    );
  });

  it('rejects a header length over the limit without allocating', () => {
    assert.throws(
      () => decodeSafetensors(fileFrom(ok, f32([1, 2]), 1n << 40n)),
      new RegExp(`exceeds the ${MAX_HEADER_BYTES}-byte limit`),
    );
  });

  it('rejects a header that is not JSON or not an object', () => {
    const garbage = Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{oops')]);
    assert.throws(() => decodeSafetensors(garbage), /header is not valid JSON/);
    assert.throws(() => decodeSafetensors(fileFrom([1, 2], new Uint8Array(0))), /header is not a JSON object/);
  });

  it('rejects metadata that is not a string map', () => {
    assert.throws(
      () => decodeSafetensors(fileFrom({ __metadata__: { n: 1 }, ...ok }, f32([1, 2]))),
      /__metadata__ must map strings to strings/,
    );
  });

  it('rejects unsupported dtypes, naming the tensor', () => {
    const header = { h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } };
    assert.throws(() => decodeSafetensors(fileFrom(header, new Uint8Array(4))), {
      message: 'safetensors: tensor "h" has dtype F16; only F32 is supported',
    });
  });

  it('rejects a shape that does not match the byte span, naming the tensor', () => {
    const header = { w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } };
    assert.throws(
      () => decodeSafetensors(fileFrom(header, f32([1, 2]))),
      /tensor "w" has shape \[3\] \(12 bytes\) but data_offsets span 8 bytes/,
    );
  });

  it('rejects malformed entries, naming the tensor', () => {
    const header = { w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } };
    assert.throws(() => decodeSafetensors(fileFrom(header, f32([1, 2]))), /tensor "w": invalid header entry/);
  });

  it('rejects gaps, overlaps and trailing bytes', () => {
    const gap = { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };
    assert.throws(() => decodeSafetensors(fileFrom(gap, f32([1, 2, 3]))), /tensor "b" starts at byte 8, expected 4/);
    const overlap = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
    };
    assert.throws(() => decodeSafetensors(fileFrom(overlap, f32([1, 2]))), /tensor "b" starts at byte 4, expected 8/);
    assert.throws(() => decodeSafetensors(fileFrom(ok, f32([1, 2, 3]))), /data section is 12 bytes but tensors cover 8/);
  });
});

describe('safetensors encode errors', () => {
  it('rejects data whose length does not match the shape', () => {
    assert.throws(
      () => encodeSafetensors(new Map([['w', { shape: [2, 2], data: new Float32Array(3) }]])),
      /tensor "w" has shape \[2, 2\] \(4 elements\) but 3 values/,
    );
  });

  it('refuses an F16 value beyond the half range instead of writing infinity', () => {
    assert.throws(
      () => encodeSafetensors(new Map([['w', { shape: [2], data: new Float32Array([1, -70000]) }]]), undefined, 'F16'),
      /tensor "w" holds -70000, beyond float16's range/,
    );
  });

  it('rejects the reserved __metadata__ name', () => {
    assert.throws(() => encodeSafetensors(new Map([['__metadata__', { shape: [], data: new Float32Array(1) }]])), /is reserved/);
  });
});
