import * as fs from 'node:fs';
import * as path from 'node:path';
import { attachCustomSynthesis, Stack, Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { renderRunbook, type RunbookInput, type RunbookTask } from '../../core';

const RUNBOOK_ID = 'DbBackupRunbook';

/** The file name of a stack's runbook in the cloud assembly, beside `<artifactId>.template.json`. */
export function runbookFileName(stack: Stack): string {
  return `${stack.artifactId}.runbook.md`;
}

/**
 * A stack's runbook: every database of the stack adds its input, and at synthesis the page is
 * written into the cloud assembly beside the template. The names CloudFormation picks at deploy
 * (cluster, task definitions, subnets, groups, bucket) are shell variables, each set by a line
 * that reads it from the deployed stack; the stack outputs carry the same commands filled in.
 */
export class StackRunbook extends Construct {
  /** The stack's runbook, made on first use. */
  public static of(scope: Construct): StackRunbook {
    const stack = Stack.of(scope);
    return (stack.node.tryFindChild(RUNBOOK_ID) as StackRunbook | undefined) ?? new StackRunbook(stack, RUNBOOK_ID);
  }

  private readonly entries: RunbookInput[] = [];

  private constructor(scope: Stack, id: string) {
    super(scope, id);
    attachCustomSynthesis(this, {
      onSynthesize: (session) => {
        fs.writeFileSync(path.join(session.outdir, runbookFileName(scope)), this.render());
      },
    });
  }

  /** Add one database (its input may hold tokens). */
  public add(input: RunbookInput): void {
    this.entries.push(input);
  }

  /** The page, tokens turned into shell variables read from the deployed stack. */
  public render(): string {
    const stack = Stack.of(this);
    const shell = new ShellNames(stack);
    const pages = this.entries.map((e) => {
      const resolved: RunbookInput = {
        ...e,
        storageUrl: shell.of(e.storageUrl),
        keyId: e.keyId === undefined ? undefined : shell.of(e.keyId),
        restoreTarget: e.restoreTarget === undefined ? undefined : shell.of(e.restoreTarget),
        backupTask: e.backupTask === undefined ? undefined : shell.task(e.backupTask),
        restoreTask: e.restoreTask === undefined ? undefined : shell.task(e.restoreTask),
      };
      return { input: resolved, names: shell.take() };
    });
    return pages
      .map(({ input, names }) =>
        renderRunbook({
          ...input,
          preamble: names.length === 0 ? undefined : preamble(stack, names),
        }),
      )
      .join('\n');
  }
}

function preamble(stack: Stack, names: string[]): string[] {
  const stackName = Token.isUnresolved(stack.stackName) ? 'STACK_NAME' : stack.stackName;
  return [
    'The names CloudFormation chose at deploy are read from the stack first (the stack outputs ' +
      'hold the same commands with them filled in: `aws cloudformation describe-stacks --stack-name ' +
      `${stackName} --query 'Stacks[0].Outputs'\`):`,
    '',
    '```sh',
    ...names.map(
      (n) =>
        `${n}=$(aws cloudformation describe-stack-resource --stack-name ${stackName} --logical-resource-id ${n} ` +
        '--query StackResourceDetail.PhysicalResourceId --output text)',
    ),
    '```',
  ];
}

/** Turns a value that may hold tokens into shell text: a resource's name becomes `${LogicalId}`. */
class ShellNames {
  private pending = new Set<string>();

  constructor(private readonly stack: Stack) {}

  public task(t: RunbookTask): RunbookTask {
    return {
      ...t,
      cluster: this.of(t.cluster),
      taskDefinition: this.of(t.taskDefinition),
      subnets: t.subnets.map((s) => this.of(s)),
      securityGroups: t.securityGroups.map((s) => this.of(s)),
      logGroup: t.logGroup === undefined ? undefined : this.of(t.logGroup),
    };
  }

  public of(value: string): string {
    if (!Token.isUnresolved(value)) return value;
    return this.render(this.stack.resolve(value));
  }

  /** The variables used since the last call, in order of first use. */
  public take(): string[] {
    const names = [...this.pending];
    this.pending = new Set();
    return names;
  }

  private render(v: unknown): string {
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
    const o = v as Record<string, unknown>;
    if (typeof o.Ref === 'string') {
      const pseudo = PSEUDO[o.Ref];
      if (pseudo !== undefined) return pseudo;
      return this.variable(o.Ref);
    }
    // The physical id of these resources is what the attribute is used for here: a security
    // group's GroupId, a KMS key's id (which --key-id takes as it takes the ARN).
    const att = o['Fn::GetAtt'];
    if (Array.isArray(att) && typeof att[0] === 'string') return this.variable(att[0]);
    const join = o['Fn::Join'];
    if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) {
      return (join[1] as unknown[]).map((p) => this.render(p)).join(join[0]);
    }
    return 'VALUE_FROM_THE_TEMPLATE';
  }

  private variable(logicalId: string): string {
    this.pending.add(logicalId);
    return `\${${logicalId}}`;
  }
}

const PSEUDO: Readonly<Record<string, string>> = {
  'AWS::Region': '$(aws configure get region)',
  'AWS::AccountId': '$(aws sts get-caller-identity --query Account --output text)',
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
};
