import { Stack, Validations } from 'aws-cdk-lib';
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
 * time. Only findings with a specific, written reason belong here; everything else is fixed.
 */
export function acknowledge(scope: IConstruct, ...rules: NagAcknowledgement[]): void {
  // `Validations` arrived in aws-cdk-lib 2.2xx; with an older aws-cdk-lib there is nothing to tell.
  if (typeof Validations?.of !== 'function') return;
  Validations.of(scope).acknowledge(...rules);
}

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
  return `${pack}-IAM5[Resource::${flatten(Stack.of(scope).resolve(arn))}]`;
}

/**
 * NIST 800-53 rev 5 IAMNoInlinePolicy: CDK grants write each role's least-privilege statements
 * into a policy attached to that role only. Acknowledged on the role (and so on its policy).
 */
export function acknowledgeInlinePolicies(scope: IConstruct): void {
  acknowledge(scope, {
    id: 'NIST.800.53.R5-IAMNoInlinePolicy',
    reason:
      'The policy holds least-privilege statements generated for this one role and the resources of this construct; a managed policy would be a shared object with nothing to share.',
  });
}
