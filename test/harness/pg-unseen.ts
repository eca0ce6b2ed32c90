import { capture } from '../../runner/src/pipeline/stages';
import { LocalPostgres } from '../../runner/src/local/postgres-server';
import { pgTool } from '../../runner/src/engines/postgres/tools';

/** The roles the varied database's owners, grants and policies name (they come back with the globals). */
export const UNSEEN_ROLES =
  'CREATE ROLE u_owner NOLOGIN; CREATE ROLE u_reader NOLOGIN; CREATE ROLE "Rôle With Space" NOLOGIN;';

/**
 * A database with as much variety as a round trip must keep: quoted, mixed-case and unicode names,
 * every common type (enum, domain, composite, range, arrays, json, big numerics, float specials,
 * every byte value, control characters), identity/serial/unused sequences at advanced values,
 * generated columns, inheritance, range/list/hash partitions with defaults and sub-partitions,
 * unlogged tables, tables without columns or rows, FKs (self-referencing, deferred, cyclic),
 * CHECK/EXCLUDE constraints, multi-MB TOASTed rows, plpgsql triggers, RLS, views of views,
 * materialized views (populated and not), large objects with owners, comments and grants,
 * extensions, column collations, default privileges and database-level properties.
 */
export const UNSEEN_SQL = `
CREATE EXTENSION pgcrypto; CREATE EXTENSION hstore; CREATE EXTENSION citext; CREATE EXTENSION pg_trgm;
CREATE EXTENSION btree_gist;
CREATE SCHEMA "Mixed Case"; CREATE SCHEMA "schéma ünï 世界"; CREATE SCHEMA "with space"; CREATE SCHEMA plain;
COMMENT ON SCHEMA plain IS 'plain schema';
GRANT USAGE ON SCHEMA plain TO u_reader;
CREATE TYPE plain.mood AS ENUM ('sad', 'ok', 'happy', 'ünï');
CREATE DOMAIN plain.posint AS int CHECK (VALUE > 0);
CREATE TYPE plain.pair AS (a int, b text);
CREATE TYPE plain.floatrange AS RANGE (subtype = float8);
CREATE COLLATION plain.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE plain.types (
  id int GENERATED ALWAYS AS IDENTITY (START 100 INCREMENT 7) PRIMARY KEY,
  m plain.mood, d plain.posint, p plain.pair, fr plain.floatrange, ir int4range, tr tstzrange,
  arr int[], tarr text[][], j json, jb jsonb, n numeric, n2 numeric(40,20), f8 float8, f4 float4,
  b bytea, t text, tz timestamptz, ts timestamp, iv interval, h hstore, ci citext, u uuid,
  bits bit varying(20), inet_ inet, mac macaddr, pt point, dt date, tm time, tmz timetz, money_ money,
  xm xml, tsv tsvector,
  colc text COLLATE "C", coli text COLLATE plain.ci,
  gen text GENERATED ALWAYS AS (upper(t)) STORED);
SET TIME ZONE 'Pacific/Chatham';
INSERT INTO plain.types (m,d,p,fr,ir,tr,arr,tarr,j,jb,n,n2,f8,f4,b,t,tz,ts,iv,h,ci,u,bits,inet_,mac,pt,dt,tm,tmz,
  money_,xm,tsv,colc,coli)
SELECT (ARRAY['sad','ok','happy','ünï'])[1 + g % 4]::plain.mood, g, ROW(g, 'p"' || g || E'\\\\')::plain.pair,
  plain.floatrange(g * 0.5, g * 1.5), int4range(g, g + 10, '[]'), tstzrange('2020-01-01 00:00+13:45', NULL),
  ARRAY[g, NULL, -g], ARRAY[ARRAY['a b', 'c"d'], ARRAY[NULL, E'e\\\\f']],
  '{"k": [1, 2.50, "x"], "k": 2}', jsonb_build_object('g', g, 'nested', jsonb_build_object('ü', ARRAY[1.10, 2e30])),
  (10::numeric ^ 120 + g) / 3, 12345678901234567890.12345678901234567890 / g,
  (ARRAY['NaN', 'Infinity', '-Infinity', '-0', '1e-320', '1.7976931348623157e308', '0.1'])[1 + g % 7]::float8,
  (ARRAY['NaN', 'Infinity', '-Infinity', '-0', '3.4028235e38'])[1 + g % 5]::float4,
  (SELECT string_agg(set_byte('\\x00'::bytea, 0, (b + g) % 256), '') FROM generate_series(0, 255) b),
  E'tab\\there\\nnewline\\r\\\\back\\\\slash \\x01\\x1f\\x7f ü 世界 🦀 ''q'' "dq" ' || g,
  timestamptz '2024-03-31 01:30:00 Europe/Berlin' + g * interval '1 hour 7 minutes',
  timestamp '1999-12-31 23:59:59.999999' + g * interval '1 day', make_interval(years => g, months => -g, days => g,
  secs => (g * 1.000001)::float8), hstore(ARRAY['k' || g, 'v=>"x"', 'null'], ARRAY['1', NULL, 'NULL']), 'CaSe' || g,
  gen_random_uuid(), (g::bit(20))::varbit, ('10.0.' || g || '.1/24')::inet, '08:00:2b:01:02:03', point(g, -g),
  date '0001-01-01' + g, time '23:59:59.5', timetz '12:00+05:30', g * 1.01,
  xmlparse(content '<a x="1">t&amp;' || g || '</a>'), to_tsvector('english', 'the quick brown fox ' || g),
  'C' || g, 'Ci' || g
FROM generate_series(1, 60) g;
INSERT INTO plain.types (t, n, f8) VALUES (NULL, 'NaN', NULL), ('', 'Infinity', '-0');
RESET TIME ZONE;
-- sequences at advanced values
CREATE TABLE plain.serials (id serial PRIMARY KEY, big bigserial, v text);
INSERT INTO plain.serials (v) SELECT 'v' || g FROM generate_series(1, 25) g;
SELECT setval('plain.serials_big_seq', 9000000000, false);
CREATE SEQUENCE plain.unused_seq START 5 INCREMENT -3 MINVALUE -100 MAXVALUE 5 CYCLE;
CREATE SEQUENCE plain.called_seq; SELECT setval('plain.called_seq', 42, true);
ALTER TABLE plain.types ALTER COLUMN id RESTART WITH 5000;
-- inheritance
CREATE TABLE plain.parent (id int, v text);
CREATE TABLE plain.child (extra int) INHERITS (plain.parent);
INSERT INTO plain.parent VALUES (1, 'p1'); INSERT INTO plain.child VALUES (2, 'c2', 22);
-- declarative partitions with default and sub-partitions
CREATE TABLE plain.meas (id int, at date NOT NULL, region text, v numeric) PARTITION BY RANGE (at);
CREATE TABLE plain.meas_2024 PARTITION OF plain.meas FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
  PARTITION BY LIST (region);
CREATE TABLE plain.meas_2024_eu PARTITION OF plain.meas_2024 FOR VALUES IN ('eu');
CREATE TABLE plain.meas_2024_rest PARTITION OF plain.meas_2024 DEFAULT;
CREATE TABLE plain.meas_default PARTITION OF plain.meas DEFAULT;
CREATE INDEX ON plain.meas (at, region);
INSERT INTO plain.meas SELECT g, date '2023-06-01' + g * 3, (ARRAY['eu', 'us', NULL])[1 + g % 3], g / 7.0
  FROM generate_series(1, 300) g;
CREATE TABLE plain.hashp (id int PRIMARY KEY, v text) PARTITION BY HASH (id);
CREATE TABLE plain.hashp0 PARTITION OF plain.hashp FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE plain.hashp1 PARTITION OF plain.hashp FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO plain.hashp SELECT g, md5(g::text) FROM generate_series(1, 200) g;
-- unlogged, no columns, no rows
CREATE UNLOGGED TABLE plain.unlogged_t (id int PRIMARY KEY, v text);
INSERT INTO plain.unlogged_t SELECT g, 'u' || g FROM generate_series(1, 50) g;
CREATE TABLE plain.no_columns (); INSERT INTO plain.no_columns SELECT FROM generate_series(1, 3);
CREATE TABLE plain.no_rows (id int, v text);
CREATE TABLE plain.no_columns_no_rows ();
-- quoted, unicode, keyword names
CREATE TABLE "Mixed Case"."Order" ("Select" int PRIMARY KEY, "from" text, "Ünï col" text, "a""quote" int);
INSERT INTO "Mixed Case"."Order" SELECT g, 'f' || g, 'ü' || g, g FROM generate_series(1, 20) g;
CREATE TABLE "schéma ünï 世界"."tablé 表 🐘" ("ключ" text PRIMARY KEY, "値" text);
INSERT INTO "schéma ünï 世界"."tablé 表 🐘" VALUES ('а', 'б'), ('鍵', '値'), (E'\\\\N', 'null-looking');
CREATE TABLE "with space"."a table" ("a column" text); INSERT INTO "with space"."a table" VALUES ('x'), (NULL);
CREATE TABLE public."user" (id int, "group" text); INSERT INTO public."user" VALUES (1, 'g');
CREATE TABLE public."table" (id int); INSERT INTO public."table" VALUES (1);
-- FKs: self-referencing, deferrable, cycles between tables
CREATE TABLE plain.node (id int PRIMARY KEY, parent int REFERENCES plain.node DEFERRABLE INITIALLY DEFERRED, v text);
INSERT INTO plain.node VALUES (1, 3, 'a'), (2, 1, 'b'), (3, 2, 'c'), (4, NULL, 'd');
CREATE TABLE plain.a (id int PRIMARY KEY, b_id int);
CREATE TABLE plain.b (id int PRIMARY KEY, a_id int REFERENCES plain.a);
ALTER TABLE plain.a ADD FOREIGN KEY (b_id) REFERENCES plain.b DEFERRABLE;
BEGIN; SET CONSTRAINTS ALL DEFERRED; INSERT INTO plain.a VALUES (1, 1); INSERT INTO plain.b VALUES (1, 1); COMMIT;
-- CHECK / EXCLUDE
CREATE TABLE plain.booking (id int, room int, during tstzrange, price numeric CHECK (price >= 0),
  CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&), CONSTRAINT c2 CHECK (room > 0) NOT VALID);
INSERT INTO plain.booking SELECT g, g % 5 + 1, tstzrange(timestamptz '2025-01-01' + g * interval '1 day',
  timestamptz '2025-01-01' + (g + 1) * interval '1 day'), g FROM generate_series(1, 30) g;
-- TOAST / very wide rows
CREATE TABLE plain.wide (id int PRIMARY KEY, big text, bin bytea, doc jsonb);
INSERT INTO plain.wide SELECT g, repeat(md5(g::text), 100000), decode(repeat(md5((g * 3)::text), 40000), 'hex'),
  (SELECT jsonb_agg(x) FROM generate_series(1, 20000) x) FROM generate_series(1, 3) g;
ALTER TABLE plain.wide ALTER COLUMN big SET STORAGE EXTERNAL;
-- functions, triggers, RLS
CREATE FUNCTION plain.touch() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN NEW.v := coalesce(NEW.v, 'touched'); RETURN NEW; END $f$;
CREATE TABLE plain.audited (id int PRIMARY KEY, v text, owner_name text DEFAULT current_user);
CREATE TRIGGER audited_touch BEFORE INSERT OR UPDATE ON plain.audited FOR EACH ROW EXECUTE FUNCTION plain.touch();
INSERT INTO plain.audited (id, v, owner_name) VALUES (1, NULL, 'u_owner'), (2, 'x', 'u_reader');
ALTER TABLE plain.audited DISABLE TRIGGER audited_touch;
ALTER TABLE plain.audited ENABLE ROW LEVEL SECURITY; ALTER TABLE plain.audited FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON plain.audited FOR SELECT TO u_reader USING (owner_name = current_user);
-- views, views of views, matviews
CREATE VIEW plain.v1 AS SELECT id, t FROM plain.types WHERE id % 2 = 0;
CREATE VIEW plain.v2 AS SELECT count(*) AS c FROM plain.v1;
CREATE MATERIALIZED VIEW plain.mv_full AS SELECT m, count(*) AS c FROM plain.types GROUP BY m;
CREATE UNIQUE INDEX ON plain.mv_full (m);
CREATE MATERIALIZED VIEW plain.mv_empty AS SELECT * FROM plain.v2 WITH NO DATA;
CREATE MATERIALIZED VIEW plain.mv_of_mv AS SELECT sum(c) AS total FROM plain.mv_full;
-- large objects: small, empty, > 1 MB, owners, comments, grants
SELECT lo_from_bytea(424242, convert_to('small lo ü', 'UTF8'));
SELECT lo_from_bytea(424243, '');
SELECT lo_from_bytea(424244, (SELECT string_agg(sha256(g::text::bytea), '') FROM generate_series(1, 50000) g));
ALTER LARGE OBJECT 424242 OWNER TO u_owner;
COMMENT ON LARGE OBJECT 424244 IS 'the big one';
GRANT SELECT ON LARGE OBJECT 424242 TO u_reader;
CREATE TABLE plain.docs (id int, lo oid); INSERT INTO plain.docs VALUES (1, 424242), (2, 424244);
-- comments and grants
COMMENT ON TABLE plain.types IS 'all the types ü';
COMMENT ON COLUMN plain.types.t IS E'text with \\'quote\\'';
COMMENT ON FUNCTION plain.touch() IS 'trigger fn';
ALTER TABLE plain.serials OWNER TO u_owner;
GRANT SELECT, INSERT ON plain.types TO u_reader;
GRANT SELECT (id, v) ON plain.serials TO u_reader;
GRANT USAGE ON SEQUENCE plain.called_seq TO u_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA plain GRANT SELECT ON TABLES TO u_reader;
-- statistics target, replica identity, cluster
ALTER TABLE plain.hashp0 ALTER COLUMN v SET STATISTICS 500;
ALTER TABLE plain.node REPLICA IDENTITY FULL;
CREATE INDEX trgm_idx ON plain.types USING gin (t gin_trgm_ops);
DO $$ BEGIN
  EXECUTE format('COMMENT ON DATABASE %I IS %L', current_database(), 'the unseen database');
  EXECUTE format('ALTER DATABASE %I SET search_path = plain, public', current_database());
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO u_reader', current_database());
END $$;
GRANT SELECT ON plain.v2 TO "Rôle With Space";
`;

export async function loadUnseen(pg: LocalPostgres, database: string): Promise<void> {
  await pg.sql(`DO $$ BEGIN ${UNSEEN_ROLES} EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
  await pg.sql(`CREATE DATABASE "${database}"`);
  await pg.sql(UNSEEN_SQL, database);
}

/** The schema as `pg_dump --schema-only` writes it, without its comments, settings and per-run keys. */
export async function schemaOf(pg: LocalPostgres, database: string): Promise<string> {
  const out = await capture({
    cmd: pgTool('pg_dump'),
    args: ['--schema-only', '-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', '-d', database],
    env: { PGPASSWORD: pg.password },
  });
  return out
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('--') && !/^\\(un)?restrict /.test(l))
    .join('\n');
}

const q = (s: string) => `'${s.replace(/'/g, "''")}'`;

/**
 * The content, exactly: every table's own rows (FROM ONLY) ordered by their text, materialized
 * views (or that they are not populated), every sequence's last_value/is_called, large objects
 * (content, owner, grants, comment) and the database's own comment, grants and settings.
 */
export async function contentOf(pg: LocalPostgres, database: string): Promise<Record<string, string>> {
  const sql = (text: string) => pg.sql(text, database);
  const rels = (
    await sql(
      `SELECT c.relkind::text || ' ' || format('%I.%I', n.nspname, c.relname) FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm', 'S')
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1`,
    )
  )
    .split('\n')
    .filter((l) => l !== '');
  const out: Record<string, string> = {};
  for (const rel of rels) {
    const [kind, name] = [rel[0], rel.slice(2)];
    if (kind === 'S') {
      out[name] = await sql(`SELECT last_value || ' ' || is_called FROM ${name}`);
    } else if (
      kind === 'm' &&
      (await sql(`SELECT relispopulated FROM pg_class WHERE oid = ${q(name)}::regclass`)) === 'f'
    ) {
      out[name] = 'not populated';
    } else {
      out[name] = await sql(
        `SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE "C")), '-') ` +
          `FROM ONLY ${name} t`,
      );
    }
  }
  out['large objects'] = await sql(
    `SELECT string_agg(oid || ' ' || pg_get_userbyid(lomowner) || ' ' || coalesce(lomacl::text, '-') || ' ' ||
       coalesce(obj_description(oid, 'pg_largeobject'), '-') || ' ' || md5(lo_get(oid)), E'\\n' ORDER BY oid)
     FROM pg_largeobject_metadata`,
  );
  out.database = await sql(
    `SELECT coalesce(shobj_description(d.oid, 'pg_database'), '-') || ' ' || coalesce(d.datacl::text, '-') || ' ' ||
       coalesce((SELECT array_agg(s ORDER BY s)::text FROM pg_db_role_setting r, unnest(r.setconfig) s
                 WHERE r.setdatabase = d.oid AND r.setrole = 0), '-')
     FROM pg_database d WHERE d.datname = current_database()`,
  );
  return out;
}
