import { LocalPostgres } from '../../runner/src/local/postgres-server';

/**
 * A database with what a round trip must keep: several schemas (one with a unicode name),
 * unicode text, jsonb, numeric, timestamps, bytea, a large object, an empty table, a view,
 * a sequence, a function, and a role with grants.
 */
export async function loadFixture(pg: LocalPostgres, database: string, rows = 2000): Promise<void> {
  await pg.sql(`CREATE DATABASE "${database}"`);
  await pg.sql(
    `
    DO $$ BEGIN CREATE ROLE reporting NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
    CREATE SCHEMA sales;
    CREATE SCHEMA "Ünïcode schema";
    CREATE TABLE public.customers (id serial PRIMARY KEY, name text NOT NULL, note text, created timestamptz NOT NULL,
      doc jsonb);
    INSERT INTO public.customers (name, note, created, doc)
      SELECT 'customer ' || i || ' héllo 世界 🎉', CASE WHEN i % 7 = 0 THEN NULL ELSE repeat(md5(i::text), 3) END,
             timestamptz '2026-01-01 00:00:00+00' + i * interval '37 minutes',
             jsonb_build_object('i', i, 'tags', jsonb_build_array('a', 'ß', i % 5), 'nested', jsonb_build_object('x',
               i * 1.5))
      FROM generate_series(1, ${rows}) AS i;
    CREATE TABLE sales.orders (id bigserial PRIMARY KEY, customer_id int REFERENCES public.customers(id),
      amount numeric(12,2), payload bytea);
    INSERT INTO sales.orders (customer_id, amount, payload)
      SELECT 1 + (i % ${rows}), (i * 7.31) % 1000,
        sha256(i::text::bytea) || '\\x00ff00'::bytea FROM generate_series(1, ${rows * 2}) AS i;
    CREATE TABLE "Ünïcode schema"."Tàble ñ" (k text PRIMARY KEY, v text);
    INSERT INTO "Ünïcode schema"."Tàble ñ" VALUES ('ключ', 'значение'), ('鍵', '値'), ('emoji', '🦀🐘');
    CREATE TABLE public.empty_table (id int);
    CREATE TABLE public.documents (id int PRIMARY KEY, body oid);
    INSERT INTO public.documents VALUES (1, lo_from_bytea(0, convert_to(repeat('large object data ', 5000), 'UTF8')));
    CREATE VIEW sales.big_orders AS SELECT * FROM sales.orders WHERE amount > 500;
    CREATE FUNCTION public.order_total(c int) RETURNS numeric LANGUAGE sql AS $f$ SELECT coalesce(sum(amount),
      0) FROM sales.orders WHERE customer_id = c $f$;
    GRANT USAGE ON SCHEMA sales TO reporting;
    GRANT SELECT ON sales.orders, sales.big_orders TO reporting;
    `,
    database,
  );
}

/**
 * A fingerprint of a database's content: an md5 over each table's ordered rows, the large
 * objects, the grants of the `reporting` role, views, functions and sequences' positions.
 */
export async function fingerprint(pg: LocalPostgres, database: string): Promise<Record<string, string>> {
  const tables = (
    await pg.sql(
      `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog',
         'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`,
      database,
    )
  )
    .split('\n')
    .filter((t) => t !== '');
  const out: Record<string, string> = {};
  for (const t of tables) {
    out[t] = await pg.sql(
      `SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '-') FROM ${t} x`,
      database,
    );
  }
  out['large objects'] = await pg.sql(
    `SELECT count(*) || ':' || coalesce(md5(string_agg(md5(lo_get(oid)), ` +
      `'|' ORDER BY oid)), '-') FROM pg_largeobject_metadata`,
    database,
  );
  out.grants = await pg.sql(
    `SELECT string_agg(table_schema || '.' || table_name || ':' || privilege_type, ',' ORDER BY ` +
      `table_schema, table_name, privilege_type) FROM information_schema.role_table_grants WHERE grantee = ` +
      `'reporting'`,
    database,
  );
  out.views = await pg.sql(
    `SELECT string_agg(schemaname || '.' || viewname || '=' || md5(definition), ',' ORDER BY 1) ` +
      `FROM pg_views WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`,
    database,
  );
  out.functions = await pg.sql(
    `SELECT string_agg(p.proname || '=' || md5(p.prosrc), ',' ORDER BY 1) FROM pg_proc p ` +
      `JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'`,
    database,
  );
  out.sequences = await pg.sql(
    `SELECT string_agg(schemaname || '.' || sequencename || '=' || ` +
      `coalesce(last_value::text, 'null'), ',' ORDER BY 1) FROM pg_sequences`,
    database,
  );
  return out;
}
