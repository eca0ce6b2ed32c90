import { AspectPriority, Aspects, CfnResource, Stack, Token, Validations } from 'aws-cdk-lib';
import type { IAspect } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { IConstruct } from 'constructs';

/** One acknowledged cdk-nag finding and why it is acceptable. */
export interface NagAcknowledgement {
  /** The rule id, with the finding for per-finding rules: `AwsSolutions-IAM5[Resource::*]`. */
  readonly id: string;
  readonly reason: string;
}

/**
 * Acknowledge cdk-nag findings that follow from this library's design, through aws-cdk-lib's
 * own `Validations` (cdk-nag 3 reads them from there), so the library needs no cdk-nag at run
 * time. cdk-nag 2 (an Aspect) reads only a resource's own `cdk_nag` metadata: the same
 * acknowledgements are written there when a cdk-nag 2 pack is among the app's Aspects (see
 * `NagV2Bridge`). An id made by `wildcardResourceFinding` is computed again once cross-stack
 * references are resolved (see `LateFindings`). Only findings with a specific, written reason
 * belong here; everything else is fixed.
 */
export function acknowledge(scope: IConstruct, ...rules: NagAcknowledgement[]): void {
  // `Validations` arrived in aws-cdk-lib 2.2xx; with an older aws-cdk-lib there is nothing to tell.
  if (typeof Validations?.of !== 'function') return;
  Validations.of(scope).acknowledge(...rules);
  Aspects.of(scope).add(NAG_V2_BRIDGE, { priority: AspectPriority.MUTATING });
  for (const rule of rules) {
    const recipes = recipesOf(scope).get(rule.id);
    if (recipes !== undefined) LateFindings.of(scope).add(recipes, rule.reason);
  }
}

/** The metadata key cdk-nag 2 reads suppressions from (a resource's CloudFormation Metadata). */
const NAG_V2_METADATA = 'cdk_nag';

interface NagV2Suppression {
  readonly id: string;
  readonly reason: string;
  readonly applies_to?: string[];
  readonly is_reason_encoded?: boolean;
}

/** cdk-nag 2's form of an acknowledgement: the finding of a per-finding rule goes to `applies_to`. */
function toNagV2(qualifiedId: string, reason: string): NagV2Suppression {
  const id = qualifiedId.replace(/^annotation::/i, '');
  const m = /^([^[]+)\[(.*)\]$/.exec(id);
  // cdk-nag 2 base64-encodes reasons with characters beyond Latin-1, and says so.
  const encoded = [...reason].some((c) => (c.codePointAt(0) ?? 0) > 255);
  const text = encoded ? Buffer.from(reason).toString('base64') : reason;
  const base = m === null ? { id, reason: text } : { id: m[1], reason: text, applies_to: [m[2]] };
  return encoded ? { ...base, is_reason_encoded: true } : base;
}

/** Whether an Aspect is a cdk-nag 2 rule pack (cdk-nag 3's packs are validation plugins, not Aspects). */
function isNagV2Pack(aspect: IAspect): boolean {
  const a = aspect as unknown as { readPackName?: unknown; visit?: unknown };
  return typeof a.visit === 'function' && typeof a.readPackName === 'string';
}

function nagV2InUse(node: IConstruct): boolean {
  for (let c: IConstruct | undefined = node; c !== undefined; c = c.node.scope) {
    if (Aspects.of(c).all.some(isNagV2Pack)) return true;
  }
  return false;
}

/**
 * Writes the acknowledgements of a resource and its ancestors into the resource's `cdk_nag`
 * metadata, where cdk-nag 2 looks, merged with any suppressions already there. It runs as a
 * mutating Aspect (priority 200), before a cdk-nag 2 pack added with the default priority, and
 * only when such a pack is in use, so templates without cdk-nag 2 do not change.
 */
class NagV2Bridge implements IAspect {
  public visit(node: IConstruct): void {
    if (!CfnResource.isCfnResource(node) || !nagV2InUse(node)) return;
    const wanted: NagV2Suppression[] = [];
    for (let c: IConstruct | undefined = node; c !== undefined; c = c.node.scope) {
      for (const entry of c.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY || entry.data === undefined) continue;
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
          wanted.push(toNagV2(id, reason));
        }
      }
    }
    if (wanted.length === 0) return;
    const existing = (node.getMetadata(NAG_V2_METADATA)?.rules_to_suppress ?? []) as NagV2Suppression[];
    const seen = new Set(existing.map((s) => JSON.stringify(s)));
    const merged = [...existing];
    for (const s of wanted) {
      const key = JSON.stringify(s);
      if (seen.has(key)) continue;
      seen.add(key);
      merged.push(s);
    }
    node.addMetadata(NAG_V2_METADATA, { rules_to_suppress: merged });
  }
}

const NAG_V2_BRIDGE = new NagV2Bridge();

/** How to compute a finding id again: the pack and the ARN (a token) it flattens. */
interface LateRecipe {
  readonly pack: string;
  readonly arn: string;
}

/** The ids `wildcardResourceFinding` returned in each app, with how to compute each again. */
const lateRecipes = new WeakMap<IConstruct, Map<string, LateRecipe[]>>();

function recipesOf(scope: IConstruct): Map<string, LateRecipe[]> {
  const root = scope.node.root;
  let map = lateRecipes.get(root);
  if (map === undefined) {
    map = new Map();
    lateRecipes.set(root, map);
  }
  return map;
}

/**
 * Acknowledgements whose finding id names a resource in another stack. At construction the
 * ARN resolves to the producer's `Fn::GetAtt`; once synthesis has resolved the cross-stack
 * references it is an `Fn::ImportValue` of the producer's export (or a cross-region reader),
 * and that is the form cdk-nag 3 sees as a validation plugin. The ids are computed again then,
 * in a construct validation (it runs after references are resolved and before the plugins).
 */
class LateFindings {
  public static of(scope: IConstruct): LateFindings {
    let late = lateByScope.get(scope);
    if (late === undefined) {
      late = new LateFindings(scope);
      lateByScope.set(scope, late);
    }
    return late;
  }

  private readonly entries: { recipes: LateRecipe[]; reason: string }[] = [];
  private readonly done = new Set<string>();

  private constructor(private readonly scope: IConstruct) {
    scope.node.addValidation({ validate: () => this.acknowledgeResolved() });
  }

  public add(recipes: LateRecipe[], reason: string): void {
    this.entries.push({ recipes, reason });
  }

  private acknowledgeResolved(): string[] {
    for (const { recipes, reason } of this.entries) {
      for (const r of recipes) {
        const id = `${r.pack}-IAM5[Resource::${flatten(Stack.of(this.scope).resolve(r.arn))}]`;
        if (this.done.has(id)) continue;
        this.done.add(id);
        Validations.of(this.scope).acknowledge({ id, reason });
      }
    }
    return [];
  }
}

const lateByScope = new WeakMap<IConstruct, LateFindings>();

/** cdk-nag's flat form of a CloudFormation value (`<Logical.Arn>/prefix/*`), used in finding ids. */
function flatten(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof node === 'object' && node !== null) {
    const o = node as Record<string, unknown>;
    if (o['Fn::Join']) {
      const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
      return items.map(flatten).join(delimiter);
    }
    if (o['Fn::Sub']) return flatten(o['Fn::Sub']);
    if (o['Fn::GetAtt']) {
      const [resource, attribute] = o['Fn::GetAtt'] as [unknown, unknown];
      return `<${flatten(resource)}.${flatten(attribute)}>`;
    }
    if (o['Fn::ImportValue']) return flatten(o['Fn::ImportValue']);
    if (o.Ref) return `<${flatten(o.Ref)}>`;
  }
  return JSON.stringify(node);
}

/**
 * The id of cdk-nag's IAM5 finding for a wildcard resource ARN, so a grant limited to a prefix
 * can be acknowledged precisely (and nothing wider with it).
 */
export function wildcardResourceFinding(
  pack: 'AwsSolutions' | 'NIST.800.53.R5',
  scope: IConstruct,
  arn: string,
): string {
  const id = `${pack}-IAM5[Resource::${flatten(Stack.of(scope).resolve(arn))}]`;
  const map = recipesOf(scope);
  const recipes = map.get(id) ?? [];
  if (!recipes.some((r) => r.pack === pack && r.arn === arn)) recipes.push({ pack, arn });
  map.set(id, recipes);
  return id;
}

/**
 * NIST 800-53 rev 5 IAMNoInlinePolicy: CDK grants write each role's least-privilege statements
 * into a policy attached to that role only. Acknowledged on the role (and so on its policy).
 */
export function acknowledgeInlinePolicies(scope: IConstruct): void {
  acknowledge(scope, {
    id: 'NIST.800.53.R5-IAMNoInlinePolicy',
    reason:
      'The policy holds least-privilege statements generated for this one role and the resources of this construct; ' +
      'a managed policy would be a shared object with nothing to share.',
  });
}

/** The NIST rules that cannot read a port that is a token (they fail with "Rule threw an error"). */
const PORT_RULES = ['NIST.800.53.R5-EC2RestrictedCommonPorts', 'NIST.800.53.R5-EC2RestrictedSSH'];

/**
 * The ingress rules a dbbackup task's `allowTo(database, port)` (the runner's, the restore
 * task's) added to the database's security groups (or, across stacks, to the runner's): when the
 * port is a token (an RDS instance's endpoint port, known at deploy time), NIST's open-port rules
 * cannot evaluate them. They are about rules open to an address range; these admit one security
 * group on one port.
 * Call it right after `allowTo`; it looks only at the rules whose source is the runner's group.
 */
export function acknowledgeRunnerIngress(runner: ec2.Connections, database: ec2.IConnectable, port: number): void {
  if (!Token.isUnresolved(port)) return;
  const runnerGroups = new Set(runner.securityGroups.map((g) => g.securityGroupId));
  const holders = [...database.connections.securityGroups, ...runner.securityGroups];
  for (const group of holders) {
    for (const child of group.node.findAll()) {
      if (!(child instanceof ec2.CfnSecurityGroupIngress)) continue;
      if (child.sourceSecurityGroupId === undefined || !runnerGroups.has(child.sourceSecurityGroupId)) continue;
      acknowledge(
        child,
        ...PORT_RULES.map((id) => ({
          id,
          reason:
            "This ingress admits only a dbbackup task's security group (the runner's or the restore task's), on " +
            "the database's own port, which RDS " +
            'assigns at deploy time (a token here); the rule checks ports open to an address range.',
        })),
      );
    }
  }
}
