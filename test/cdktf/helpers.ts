/**
 * One small synth helper for the CDKTF tests: build constructs in a fresh stack with a
 * provider, synthesize with `Testing.synth` and read the Terraform JSON back.
 */
import { TerraformStack, Testing } from 'cdktf';
import { Construct } from 'constructs';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { GoogleProvider } from '@cdktf/provider-google/lib/provider';

/** Resource configurations by type, then by logical id. */
export type TfJson = {
  resource: Record<string, Record<string, Record<string, any>>>;
  data?: Record<string, Record<string, Record<string, any>>>;
};

export interface Synthesized {
  readonly stack: TerraformStack;
  readonly tf: TfJson;
  /** Every resource of `type` (its configuration). */
  all(type: string): Record<string, any>[];
  /** The one resource of `type`; fails when there are none or several. */
  one(type: string): Record<string, any>;
  /** The resource of `type` whose construct path ends with `pathSuffix`. */
  at(type: string, pathSuffix: string): Record<string, any>;
  /** The number of resources of `type`. */
  count(type: string): number;
}

export function synthAws(build: (stack: TerraformStack) => void): Synthesized {
  return synth((stack) => {
    new AwsProvider(stack, 'aws', { region: 'eu-west-1' });
    build(stack);
  });
}

export function synthGoogle(build: (stack: TerraformStack) => void): Synthesized {
  return synth((stack) => {
    new GoogleProvider(stack, 'google', { project: 'acme-prod', region: 'europe-west1' });
    build(stack);
  });
}

export function synth(build: (stack: TerraformStack) => void): Synthesized {
  const stack = new TerraformStack(Testing.app(), 'test');
  build(stack);
  return read(stack, Testing.synth(stack));
}

export function read(stack: TerraformStack, json: string): Synthesized {
  const tf = JSON.parse(json) as TfJson;
  const all = (type: string) => Object.values(tf.resource?.[type] ?? {});
  return {
    stack,
    tf,
    all,
    count: (type) => all(type).length,
    one(type) {
      const r = all(type);
      if (r.length !== 1) throw new Error(`expected one ${type}, found ${r.length}`);
      return r[0];
    },
    at(type, pathSuffix) {
      // Logical ids are the construct path joined by '_' plus a hash; 'Resource' is left out.
      const parts = pathSuffix.split('/').filter((p) => p !== 'Resource');
      const re = new RegExp(`(^|_)${parts.join('_')}_[0-9A-F]{8}$`);
      const r = Object.entries(tf.resource?.[type] ?? {}).filter(([id]) => re.test(id));
      if (r.length !== 1)
        throw new Error(`expected one ${type} at …${pathSuffix}, found ${r.map(([id]) => id).join(', ') || 'none'}`);
      return r[0][1];
    },
  };
}

/** A parsed IAM policy document. */
export interface Policy {
  Statement: {
    Sid?: string;
    Effect: string;
    Action: string | string[];
    Resource?: string | string[];
    Condition?: any;
    Principal?: any;
  }[];
}

export function policy(json: string): Policy {
  return JSON.parse(json) as Policy;
}

/** Every action a policy allows. */
export function allowedActions(p: Policy): string[] {
  return p.Statement.filter((s) => s.Effect === 'Allow').flatMap((s) =>
    Array.isArray(s.Action) ? s.Action : [s.Action],
  );
}

export function statement(p: Policy, sid: string): Policy['Statement'][number] {
  const s = p.Statement.find((x) => x.Sid === sid);
  if (s === undefined) throw new Error(`no statement ${sid} in ${JSON.stringify(p)}`);
  return s;
}

/** Warnings and errors the constructs under `scope` added with Annotations. */
export function warnings(scope: Construct): string[] {
  return scope.node
    .findAll()
    .flatMap((c) => c.node.metadata)
    .filter((m) => m.type === '@cdktf/warn')
    .map((m) => String(m.data));
}

/** An environment list (`[{name, value}]`) as a map. */
export function envMap(list: { name: string; value?: string }[]): Record<string, string> {
  return Object.fromEntries(list.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
}

/** Replace content hashes of assets (they change with the bundled Lambda) for snapshots. */
export function normalizeAssets(json: string): unknown {
  return JSON.parse(json.replace(/[0-9A-F]{32}/g, '<ASSET_HASH>'));
}
