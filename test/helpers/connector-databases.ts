/**
 * Throwaway databases for the connector tests, one per suite, on each engine the run has:
 * PostgreSQL always (PLEDGE_TEST_DATABASE_URL or the runner's embedded server), MySQL/MariaDB when
 * PLEDGE_TEST_MYSQL_URL is set (`npm run test:mysql`), so `npm test` needs nothing but Node.js.
 */
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import type { ConnectorEngine } from '../../src/manifest/dataset.schema.js';
import { createPostgresDatabase } from './postgres.js';

/** A database of its own: its URL, a way to run DDL and setup statements, and its removal. */
export interface EngineDatabase {
  engine: ConnectorEngine;
  url: string;
  /** Runs each statement in order (setup only: the tests' values are made up). */
  exec(...statements: string[]): Promise<void>;
  /** The rows of a query, for assertions. */
  query(text: string): Promise<Array<Record<string, unknown>>>;
  drop(): Promise<void>;
}

/** The engines this run covers. */
export function testEngines(): ConnectorEngine[] {
  return process.env.PLEDGE_TEST_MYSQL_URL ? ['postgresql', 'mysql'] : ['postgresql'];
}

/** Creates a database named `prefix_<random>` on the engine's test server. */
export async function createEngineDatabase(engine: ConnectorEngine, prefix: string): Promise<EngineDatabase> {
  if (engine === 'postgresql') {
    const made = await createPostgresDatabase(prefix);
    const client = new pg.Client({ connectionString: made.url });
    await client.connect();
    return {
      engine,
      url: made.url,
      async exec(...statements) {
        for (const s of statements) await client.query(s);
      },
      async query(text) {
        return (await client.query(text)).rows as Array<Record<string, unknown>>;
      },
      async drop() {
        await client.end();
        await made.drop();
      },
    };
  }
  const server = process.env.PLEDGE_TEST_MYSQL_URL as string;
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = await createConnection({ uri: server });
  await admin.query(`create database ${name}`);
  const url = new URL(server);
  url.pathname = `/${name}`;
  const conn = await createConnection({ uri: url.href, supportBigNumbers: true, bigNumberStrings: true });
  return {
    engine,
    url: url.href,
    async exec(...statements) {
      for (const s of statements) await conn.query(s);
    },
    async query(text) {
      const [rows] = await conn.query(text);
      return rows as Array<Record<string, unknown>>;
    },
    async drop() {
      await conn.end();
      await admin.query(`drop database if exists ${name}`);
      await admin.end();
    },
  };
}
