import { describe, expect, it } from 'vitest';

// `.ci/run` runs the unit suite a second time on another Node (PULLQ_EXPECT_NODE=24): this proves the
// test workers themselves run on it, not only the process that started vitest.

describe('runtime', () => {
  it(`runs on Node ${process.version}${process.env['PULLQ_EXPECT_NODE'] ? `, the major the CI leg asked for (${process.env['PULLQ_EXPECT_NODE']})` : ''}`, () => {
    console.log(`unit suite on Node ${process.version} (${process.execPath})`);
    const major = Number(process.versions.node.split('.')[0]);
    expect(major).toBeGreaterThanOrEqual(20);
    const expected = process.env['PULLQ_EXPECT_NODE'];
    if (expected) expect(major).toBe(Number(expected));
  });
});
