/**
 * The shop database the connector tests share: customers (found by e-mail or phone), their
 * addresses (a `to` reference: customers.address_id → addresses.id), orders (a `from` reference)
 * and order items, three levels down, with real FOREIGN KEY constraints and no cascades, so an
 * erasure in the wrong order fails. Half the references are written in Fides' spelling.
 */
import { parse } from 'yaml';
import { datasetSchema, type Dataset } from '../../src/manifest/dataset.schema.js';
import type { EngineDatabase } from '../helpers/connector-databases.js';

/** The dataset block, as a user would write it in pledge.yaml. */
export const SHOP_DATASET_YAML = `key: shop
name: Shop database
engine: postgresql
connected: true
collections:
  - name: addresses
    fields:
      - name: id
        primary_key: true
      - name: street
        data_categories: [user.contact.address.street]
        erase: delete_row
  - name: customers
    fields:
      - name: id
        fides_meta:
          primary_key: true
      - name: email
        data_categories: [user.contact.email]
        fides_meta:
          identity: email
        erase: mask
        mask: erased@invalid
      - name: phone
        data_categories: [user.contact.phone_number]
        identity: phone
        erase: set_null
      - name: name
        data_categories: [user.name]
        erase: mask
      - name: address_id
        references:
          - field: addresses.id
            direction: to
        erase: set_null
  - name: orders
    fields:
      - name: id
      - name: customer_id
        fides_meta:
          references:
            - dataset: shop
              field: customers.id
              direction: from
      - name: shipping_note
        data_categories: [user.contact.address]
        erase: delete_row
  - name: order_items
    fields:
      - name: id
      - name: order_id
        references:
          - field: orders.id
            direction: from
      - name: gift_message
        data_categories: [user.content]
        erase: delete_row
`;

/** The parsed dataset for `engine`. */
export function shopDataset(engine: Dataset['engine']): Dataset {
  return datasetSchema.parse({ ...(parse(SHOP_DATASET_YAML) as object), engine });
}

/** Creates the tables and two customers: 1 (ann@example.com, the subject) and 2 (bob@example.com). */
export async function createShop(db: EngineDatabase): Promise<void> {
  await db.exec(
    'create table addresses (id integer primary key, street varchar(200))',
    `create table customers (id integer primary key, email varchar(200), phone varchar(40), name varchar(200),
       address_id integer, foreign key (address_id) references addresses (id))`,
    `create table orders (id integer primary key, customer_id integer not null, shipping_note varchar(200),
       foreign key (customer_id) references customers (id))`,
    `create table order_items (id integer primary key, order_id integer not null, gift_message varchar(200),
       foreign key (order_id) references orders (id))`,
    'create index orders_customer on orders (customer_id)',
    'create index items_order on order_items (order_id)',
    "insert into addresses values (10, '1 Ann Street'), (20, '2 Bob Road')",
    "insert into customers values (1, 'ann@example.com', '+15550001', 'Ann', 10), (2, 'bob@example.com', '+15550002', 'Bob', 20)",
    "insert into orders values (100, 1, 'leave at door'), (101, 1, 'ring twice'), (200, 2, 'bob note')",
    "insert into order_items values (1000, 100, 'happy birthday'), (1001, 100, null), (1002, 101, 'for you'), (2000, 200, 'bob gift')",
  );
}

/** Drops the tables, children first. */
export async function dropShop(db: EngineDatabase): Promise<void> {
  await db.exec(
    'drop table if exists invoices',
    'drop table if exists order_items',
    'drop table if exists orders',
    'drop table if exists customers',
    'drop table if exists addresses',
  );
}
