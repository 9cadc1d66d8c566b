/**
 * Opens the connectors of a manifest's connected datasets, each on the URL its environment
 * variable gives (connectors.config.ts).
 */
import type { Dataset } from '../../manifest/dataset.schema.js';
import type { Connector } from './connector.js';
import type { ConnectorSetting } from './connectors.config.js';
import { mysqlConnector } from './mysql.connector.js';
import { postgresConnector } from './postgres.connector.js';

/** A connector for `dataset` (at manifest position `index`) with its checked setting. */
export function openConnector(
  dataset: Dataset,
  index: number,
  setting: Pick<ConnectorSetting, 'engine' | 'url'>,
): Connector {
  return setting.engine === 'postgresql'
    ? postgresConnector(dataset, index, setting.url)
    : mysqlConnector(dataset, index, setting.url);
}
