/**
 * The manifest side of the connectors: the dataset block (Pledge's and Fides' spellings), the checks
 * of `pledge check` with their positions, and the connection URLs from the environment.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { checkManifest } from '../../src/manifest/manifest.checker.js';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import { formatLocation, sortProblems } from '../../src/manifest/problems.js';
import {
  connectorSettingsOrProblems,
  connectorUrlVariable,
  loadConnectorSettings,
  redactUrl,
} from '../../src/rights/connectors/connectors.config.js';
import { ROOT } from '../helpers/cli.js';
import { SHOP_DATASET_YAML, shopDataset } from './connectors.fixture.js';

const base = await readFile(path.join(ROOT, 'test/fixtures/fides/pledge.yaml'), 'utf8');
const indent = (yaml: string) =>
  yaml
    .split('\n')
    .map((l, i) => (l === '' ? l : i === 0 ? `  - ${l}` : `    ${l}`))
    .join('\n');

function check(datasetYaml: string) {
  const text = `${base}\ndatasets:\n${indent(datasetYaml)}`;
  const loaded = parseManifest(text, 'pledge.yaml');
  assert.deepEqual(loaded.problems, [], 'schema-valid');
  assert.ok(loaded.manifest);
  const problems = sortProblems(checkManifest(loaded.manifest, loaded.locator).problems);
  const lines = text.split('\n');
  return problems.map((p) => ({
    code: p.code,
    at: formatLocation(p.location),
    line: lines[p.location.line - 1]?.trim(),
    message: p.message,
  }));
}

describe('datasets in pledge check', () => {
  test('the shop dataset, half in Fides’ spelling, passes', () => {
    assert.deepEqual(check(SHOP_DATASET_YAML), []);
  });

  test('a reference to an unknown collection or field is an error at the reference', () => {
    const problems = check(
      SHOP_DATASET_YAML.replace('field: orders.id', 'field: order.id').replace(
        'field: addresses.id',
        'field: addresses.ident',
      ),
    );
    assert.deepEqual(
      problems.map((p) => [p.code, p.line]),
      [
        ['check.dataset_unreachable', '- name: addresses'],
        ['check.dataset_unknown_reference', '- field: addresses.ident'],
        ['check.dataset_unreachable', '- name: order_items'],
        ['check.dataset_unknown_reference', '- field: order.id'],
      ],
      'sorted by position',
    );
    assert.match(problems[3]?.message ?? '', /did you mean "orders"/);
    assert.match(problems[0]?.at ?? '', /^pledge\.yaml:\d+:\d+$/);
  });

  test('a cycle in the paths, and erase actions that would break a foreign key', () => {
    const problems = check(
      SHOP_DATASET_YAML.replace(
        '      - name: gift_message',
        `      - name: parent_item
        references:
          - field: order_items.id
            direction: from
      - name: gift_message`,
      )
        .replace('        mask: erased@invalid\n', '')
        .replace(
          `      - name: id
        fides_meta:
          primary_key: true`,
          `      - name: id
        erase: set_null
        fides_meta:
          primary_key: true`,
        )
        .replace(
          '        data_categories: [user.contact.address]\n        erase: delete_row\n',
          '        data_categories: [user.contact.address]\n',
        ),
    );
    assert.deepEqual(problems.map((p) => [p.code, p.line]).sort(), [
      ['check.dataset_erases_referenced_key', '- name: id'],
      ['check.dataset_path_cycle', '- field: order_items.id'],
    ]);
  });

  test('a dataset no connector acts on (a Fides import) is not held to the paths', () => {
    const imported = SHOP_DATASET_YAML.replace('connected: true', 'connected: false')
      .replace(/\n\s+erase: \w+/g, '')
      .replace(/\n\s+mask: .*/g, '')
      .replace('field: orders.id', 'field: other_db.orders.id');
    assert.deepEqual(check(imported), [], 'neither the cross-dataset path nor the unreachable items');
  });

  test('deleting parents whose children keep pointing at them, a stray mask, a connected dataset without identity', () => {
    const orphan = check(
      SHOP_DATASET_YAML.replace(
        '        data_categories: [user.name]\n        erase: mask',
        '        data_categories: [user.name]\n        erase: delete_row',
      ).replace(
        '        data_categories: [user.contact.address]\n        erase: delete_row\n',
        '        data_categories: [user.contact.address]\n        erase: set_null\n        mask: x\n',
      ),
    );
    assert.deepEqual(
      orphan.map((p) => [p.code, p.line]),
      [
        ['check.dataset_orphaned_children', '- name: customer_id'],
        ['check.dataset_mask_without_erase', 'mask: x'],
      ],
    );
    const anonymous = check(
      SHOP_DATASET_YAML.replace('        fides_meta:\n          identity: email\n', '').replace(
        '        identity: phone\n',
        '',
      ),
    );
    assert.deepEqual(
      anonymous.map((p) => p.code),
      ['check.dataset_no_identity'],
    );
  });
});

describe('connector URLs come from the environment', () => {
  const datasets = [shopDataset('postgresql'), { ...shopDataset('mysql'), key: 'crm-eu' }];

  test('the variable is the key upper-cased, "-" as "_"', () => {
    assert.equal(connectorUrlVariable('crm-eu'), 'PLEDGE_CONNECTOR_CRM_EU_URL');
  });

  test('a connected dataset without a URL is a boot error naming the variable; the URL never shows', () => {
    assert.throws(
      () => loadConnectorSettings(datasets, { PLEDGE_CONNECTOR_SHOP_URL: 'postgres://u:s3cret@db/shop' }),
      (err: Error & { problems?: string[] }) => {
        assert.deepEqual(err.problems?.length, 1);
        assert.match(
          err.problems?.[0] ?? '',
          /^PLEDGE_CONNECTOR_CRM_EU_URL is not set: dataset crm-eu is connected/,
        );
        assert.doesNotMatch(err.message, /s3cret/);
        return true;
      },
    );
    const problems: string[] = [];
    connectorSettingsOrProblems(
      datasets,
      {
        PLEDGE_CONNECTOR_SHOP_URL: 'mysql://u:s3cret@db/shop',
        PLEDGE_CONNECTOR_CRM_EU_URL: 'mariadb://db/crm',
      },
      problems,
    );
    assert.deepEqual(problems, [
      'PLEDGE_CONNECTOR_SHOP_URL must be a postgresql URL (postgres:// or postgresql://…) for dataset shop, got a mysql URL',
    ]);
  });

  test('the settings of every connected dataset; a dataset not connected needs none', () => {
    const settings = loadConnectorSettings(
      [...datasets, { ...shopDataset('postgresql'), key: 'archive', connected: false }],
      { PLEDGE_CONNECTOR_SHOP_URL: 'postgres://db/shop', PLEDGE_CONNECTOR_CRM_EU_URL: 'mysql://db/crm' },
    );
    assert.deepEqual(
      settings.map((s) => [s.dataset, s.engine, s.variable]),
      [
        ['shop', 'postgresql', 'PLEDGE_CONNECTOR_SHOP_URL'],
        ['crm-eu', 'mysql', 'PLEDGE_CONNECTOR_CRM_EU_URL'],
      ],
    );
  });

  test('redactUrl hides the password', () => {
    assert.equal(
      redactUrl('postgres://app:s3cret@db:5432/shop?sslmode=require'),
      'postgres://app:***@db:5432/shop?sslmode=require',
    );
    assert.equal(redactUrl('mysql://app@db/shop?password=s3cret'), 'mysql://app@db/shop?password=***');
  });
});
