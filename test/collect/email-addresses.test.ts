/**
 * Collection refuses an e-mail address RFC 5321 does not allow unquoted (a line break that would
 * start a new header, a control character, angle brackets, quotes), in a field of the e-mail
 * category and in `subject.email` alike, with `vault.identifier_invalid` naming the kind and nothing
 * stored. On SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { randomEmail } from '../helpers/vault.js';
import { openCollectApp, type CollectTestApp } from './collect-app.js';

interface Problem {
  code: string;
  path: string;
  message: string;
  kind?: string;
}

const REFUSED = [
  'ada@example.com\r\nBcc: everyone@example.com',
  'ada\n@example.com',
  'a\u0000da@example.com',
  'Ada <ada@example.com>',
  '<ada@example.com>',
  'ada>@example.com',
  '"ada"@example.com',
  'ada@[192.0.2.1]',
];

for (const dialect of DIALECTS) {
  describe(`e-mail addresses at the collection points on ${dialect}`, () => {
    let t: CollectTestApp;
    before(async () => {
      t = await openCollectApp(dialect);
    });
    after(async () => t.cleanup());

    const post = (payload: object) =>
      t.app.http.inject({
        method: 'POST',
        url: '/api/v1/collect/registration',
        headers: { authorization: `Bearer ${t.key}` },
        payload,
      });
    const data = (email: string) => ({
      email,
      first_name: 'Ada',
      last_name: 'Lovelace',
      password: 'correct horse battery',
    });
    const stored = async () =>
      Number(
        (
          await tablesOf(t.database)
            .selectFrom('records')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );

    test('an address with a control character, an angle bracket or a quote is refused, nothing stored', async () => {
      const before = await stored();
      for (const address of REFUSED) {
        for (const [payload, path] of [
          [{ jurisdiction: 'US', data: data(address) }, 'data.email'],
          [{ jurisdiction: 'US', subject: { email: address }, data: data(randomEmail()) }, 'subject.email'],
        ] as const) {
          const res = await post(payload);
          const where = `${JSON.stringify(address)} in ${path}`;
          assert.equal(res.statusCode, 422, `${where}: ${res.body}`);
          const problems = res.json<{ error: { details: { problems: Problem[] } } }>().error.details.problems;
          const problem = problems.find((p) => p.path === path);
          assert.equal(problem?.code, 'vault.identifier_invalid', where);
          assert.equal(problem.message, `${path} is not a valid e-mail address`, where);
          assert.equal(problem.kind, 'email', where);
          assert.ok(!res.body.includes('ada@example.com'), 'the refused address is not echoed');
        }
      }
      assert.equal(await stored(), before);
      // The same registration with a valid address is taken.
      assert.equal((await post({ jurisdiction: 'US', data: data(randomEmail()) })).statusCode, 201);
    });
  });
}
