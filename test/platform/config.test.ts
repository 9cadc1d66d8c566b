/**
 * Settings checked at boot: `PLEDGE_PUBLIC_URL` (every link in every mail starts with it, some in
 * headers) is an absolute http(s) URL, normalized, and nothing that could end a header line gets
 * through; `PLEDGE_TRUST_PROXY` is a hop count or a list of addresses and CIDR blocks.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig, type Config } from '../../src/platform/config.js';
import { ConfigError } from '../../src/platform/errors.js';

const BASE = { PLEDGE_DATA_DIR: '/tmp/pledge-config-test', PLEDGE_LOG_LEVEL: 'silent' };
const load = (env: Record<string, string>): Config => loadConfig({ ...BASE, ...env }, { manifest: 'x.yaml' });

/** The problems loadConfig lists for `env`. */
function problemsOf(env: Record<string, string>): string[] {
  try {
    load(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail(`${JSON.stringify(env)} was accepted`);
}

describe('PLEDGE_PUBLIC_URL', () => {
  test('is normalized: trailing slashes dropped, host lower-cased, default port dropped', () => {
    for (const [raw, expected] of [
      ['https://privacy.example.com', 'https://privacy.example.com'],
      ['https://privacy.example.com/', 'https://privacy.example.com'],
      ['  https://Privacy.Example.COM:443//  ', 'https://privacy.example.com'],
      ['http://localhost:8080/pledge/', 'http://localhost:8080/pledge'],
      ['https://bücher.example/', 'https://xn--bcher-kva.example'],
    ] as const)
      assert.equal(load({ PLEDGE_PUBLIC_URL: raw }).publicUrl, expected, raw);
    assert.equal(load({ PORT: '9090' }).publicUrl, 'http://localhost:9090', 'unset: this server');
  });

  test('refuses what is not an absolute http(s) URL, and anything that could split a header', () => {
    for (const raw of [
      'https://privacy.example.com\r\nBcc: everyone@example.com',
      'https://privacy.example.com/\nX-Injected: 1',
      'https://privacy.exa\tmple.com',
      'https://privacy.example.com/a b',
      'https://privacy.example.com/\u0000',
      'privacy.example.com',
      '/relative/path',
      'ftp://privacy.example.com',
      'javascript:alert(1)',
      'https://user:secret@privacy.example.com',
      'https://privacy.example.com/?utm=1',
      'https://privacy.example.com/#top',
    ]) {
      const problems = problemsOf({ PLEDGE_PUBLIC_URL: raw });
      assert.equal(problems.length, 1, JSON.stringify(raw));
      assert.match(problems[0] ?? '', /^PLEDGE_PUBLIC_URL /);
      assert.ok(!(problems[0] ?? '').includes('secret'), 'the value is not echoed');
    }
  });
});

describe('PLEDGE_TRUST_PROXY', () => {
  test('unset or 0 trusts no proxy; a number trusts that many hops; a list names the proxies', () => {
    assert.equal(load({}).trustProxy, false);
    assert.equal(load({ PLEDGE_TRUST_PROXY: '0' }).trustProxy, false);
    assert.equal(load({ PLEDGE_TRUST_PROXY: '2' }).trustProxy, 2);
    assert.deepEqual(
      load({ PLEDGE_TRUST_PROXY: ' 10.0.0.0/8, 192.0.2.7 ,fd00::/8,::1,loopback' }).trustProxy,
      ['10.0.0.0/8', '192.0.2.7', 'fd00::/8', '::1', 'loopback'],
    );
  });

  test('refuses what is neither, and never trusts every proxy', () => {
    for (const raw of [
      'true',
      '*',
      '21',
      '-1',
      '10.0.0.0/33',
      'fd00::/129',
      '10.0.0.0/8/1',
      'proxy.internal',
      '10.0.0.0/8,',
    ]) {
      const problems = problemsOf({ PLEDGE_TRUST_PROXY: raw });
      assert.equal(problems.length, 1, raw);
      assert.match(problems[0] ?? '', /^PLEDGE_TRUST_PROXY must be a hop count/);
    }
  });
});
