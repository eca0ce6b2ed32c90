import { createHash } from 'node:crypto';
import { DefaultTokenResolver, StringConcat, TerraformStack, Token, Tokenization } from 'cdktf';
import { Construct } from 'constructs';
import { CloudRunV2Job } from '@cdktf/provider-google/lib/cloud-run-v2-job';
import { CloudRunV2JobIamMember } from '@cdktf/provider-google/lib/cloud-run-v2-job-iam-member';
// biome-ignore format: one specifier and a long module path; on one line it is over 120 characters
import {
  DataGoogleStorageProjectServiceAccount,
} from '@cdktf/provider-google/lib/data-google-storage-project-service-account';
import { EventarcTrigger } from '@cdktf/provider-google/lib/eventarc-trigger';
import { ProjectIamMember } from '@cdktf/provider-google/lib/project-iam-member';
import { ServiceAccount } from '@cdktf/provider-google/lib/service-account';
import { StorageBucketIamMember } from '@cdktf/provider-google/lib/storage-bucket-iam-member';
import { WorkflowsWorkflow } from '@cdktf/provider-google/lib/workflows-workflow';
import {
  BackupRole,
  ConfigError,
  GCS_BUCKET_ROLES,
  MANIFEST_NAME,
  RUNNER_ENV,
  RunnerCommand,
  checkVaultPrefix,
  renderRunnerEnvironment,
  validateDatabaseId,
  vaultStorageUrl,
} from '../../core';
import { Duration } from '../common/duration';
import { RunnerImage } from './image';
import { runnerJob } from './private/job';
import { escapeInterpolation, resourceName, serviceAccountId } from './private/names';
import { IBackupVault } from './vault';

/** The Eventarc event type of a new object (a finished upload). */
export const OBJECT_FINALIZED = 'google.cloud.storage.object.v1.finalized';

/**
 * The workflow run for each finalized object: it ignores anything but a `manifest.json` under
 * the prefix, takes the backup id from the manifest's folder name and starts the verifier job
 * with `verify --id ID` (fire and forget: the job's own result is what the alerts watch).
 */
export const VERIFY_WORKFLOW = `# db-backup-constructs: verify each committed backup.
main:
  params: [event]
  steps:
    - read:
        assign:
          - name: \${event.data.name}
          - prefix: \${sys.get_env("BACKUP_PREFIX")}
          - parts: \${text.split(name, "/")}
    - filter:
        switch:
          - condition: \${len(parts) < 2}
            return: "ignored: not in a backup folder"
          - condition: \${parts[len(parts) - 1] != "${MANIFEST_NAME}"}
            return: "ignored: not a manifest"
          - condition: \${prefix != "" and len(name) <= len(prefix) + 1}
            return: "ignored: outside the prefix"
          - condition: \${prefix != "" and text.substring(name, 0, len(prefix) + 1) != prefix + "/"}
            return: "ignored: outside the prefix"
    - pick:
        assign:
          - backup_id: \${parts[len(parts) - 2]}
    - verify:
        call: googleapis.run.v2.projects.locations.jobs.run
        args:
          name: \${sys.get_env("VERIFIER_JOB")}
          body:
            overrides:
              containerOverrides:
                - args: ["${RunnerCommand.VERIFY}", "--id", "\${backup_id}"]
          connector_params:
            skip_polling: true
        result: operation
    - done:
        return: \${operation.name}
`;

/**
 * Cloud Storage publishes its events through Pub/Sub as its service agent, which needs
 * `roles/pubsub.publisher` in the project: one grant per project and stack, however many
 * verifiers there are (two equal `google_project_iam_member`s would undo each other on destroy).
 */
function storageAgentPublishes(scope: Construct, project: string): ProjectIamMember {
  const stack = TerraformStack.of(scope);
  // Keyed by the project as Terraform will see it (`acme-prod`, `${var.project_id}`), so the
  // logical id is stable however many tokens the app made before.
  const resolved = Tokenization.resolve(project, {
    scope: stack,
    resolver: new DefaultTokenResolver(new StringConcat()),
    preparing: true,
  });
  const key = createHash('sha256').update(String(resolved)).digest('hex').slice(0, 8);
  const id = `DbBackupStorageAgentPublishes${key}`;
  const existing = stack.node.tryFindChild(id) as ProjectIamMember | undefined;
  if (existing !== undefined) return existing;
  const agent = new DataGoogleStorageProjectServiceAccount(stack, `DbBackupStorageAgent${key}`, { project });
  return new ProjectIamMember(stack, id, {
    project,
    role: 'roles/pubsub.publisher',
    member: `serviceAccount:${agent.emailAddress}`,
  });
}

/** Properties of a `BackupVerifier`. */
export interface BackupVerifierProps {
  readonly databaseId: string;
  readonly project: string;
  /** The region of the verifier job and its workflow. */
  readonly region: string;
  readonly vault: IBackupVault;
  /** The runner image (the verifier runs `dbbackup verify`). */
  readonly image: RunnerImage;
  /** @default - the databaseId */
  readonly prefix?: string;
  /** @default Duration.hours(2) */
  readonly timeout?: Duration;
  /** @default 1024 */
  readonly memoryLimitMiB?: number;
  /** @default true */
  readonly deletionProtection?: boolean;
  /** @default - none */
  readonly labels?: Record<string, string>;
}

/**
 * The verifier on Google Cloud: a Cloud Run job running the same runner image with
 * `dbbackup verify`, started for each committed manifest by an Eventarc trigger on the bucket's
 * object-finalized events through a small workflow (Eventarc cannot start a Cloud Run job
 * directly, nor filter on object names). Its service account can only read the bucket.
 */
export class BackupVerifier extends Construct {
  public readonly job: CloudRunV2Job;
  public readonly workflow: WorkflowsWorkflow;
  public readonly trigger: EventarcTrigger;
  public readonly serviceAccount: ServiceAccount;
  public readonly jobName: string;
  /** The verifier job's plain environment (the contract). */
  public readonly environment: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: BackupVerifierProps) {
    super(scope, id);
    if (!Token.isUnresolved(props.databaseId)) validateDatabaseId(props.databaseId);
    const prefix = props.prefix ?? props.databaseId;
    if (!Token.isUnresolved(prefix)) checkVaultPrefix(prefix);
    if (Token.isUnresolved(props.vault.location)) {
      throw new ConfigError(
        "the vault's location is a token; the Eventarc trigger must be " +
          "created in the bucket's location, so give it literally.",
      );
    }
    const from = vaultStorageUrl('gs', props.vault.bucketName, prefix);
    this.jobName = resourceName(props.databaseId, 'verify');
    this.environment = {
      ...renderRunnerEnvironment(RunnerCommand.VERIFY, { from, json: true }),
      [RUNNER_ENV.DATABASE_ID]: props.databaseId,
    };

    this.serviceAccount = new ServiceAccount(this, 'ServiceAccount', {
      accountId: serviceAccountId(props.databaseId, 'verify'),
      displayName: `dbbackup verifier of ${props.databaseId}`,
      description: 'Reads backups to verify them',
      project: props.project,
    });
    // The verifier's roles (lib/core/permissions): read only.
    const [reads] = GCS_BUCKET_ROLES[BackupRole.VERIFIER].map(
      (role) =>
        new StorageBucketIamMember(this, 'ReadsObjects', {
          bucket: props.vault.bucketName,
          role,
          member: this.serviceAccount.member,
        }),
    );
    this.job = runnerJob(this, 'Resource', {
      name: this.jobName,
      project: props.project,
      region: props.region,
      image: props.image.imageUri,
      args: [RunnerCommand.VERIFY, '--latest'],
      environment: this.environment,
      serviceAccountEmail: this.serviceAccount.email,
      cpu: '1',
      memoryLimitMiB: props.memoryLimitMiB ?? 1024,
      timeout: props.timeout ?? Duration.hours(2),
      maxRetries: 1,
      deletionProtection: props.deletionProtection ?? true,
      labels: props.labels,
      dependsOn: [reads],
    });

    // The workflow may start this one job with other arguments; nothing else.
    const workflowAccount = new ServiceAccount(this, 'WorkflowServiceAccount', {
      accountId: serviceAccountId(props.databaseId, 'verify-wf'),
      displayName: `dbbackup verify workflow of ${props.databaseId}`,
      description: 'Starts the verifier job for a committed manifest',
      project: props.project,
    });
    const runs = new CloudRunV2JobIamMember(this, 'WorkflowRunsJob', {
      project: props.project,
      location: props.region,
      name: this.job.name,
      role: 'roles/run.jobsExecutorWithOverrides',
      member: workflowAccount.member,
    });
    this.workflow = new WorkflowsWorkflow(this, 'Workflow', {
      name: resourceName(props.databaseId, 'verify'),
      description: `dbbackup: verify each committed backup of ${props.databaseId}`,
      project: props.project,
      region: props.region,
      serviceAccount: workflowAccount.email,
      sourceContents: escapeInterpolation(VERIFY_WORKFLOW),
      userEnvVars: { VERIFIER_JOB: this.job.id, BACKUP_PREFIX: prefix },
      deletionProtection: false,
      labels: props.labels,
      dependsOn: [runs],
    });

    // Eventarc delivers the bucket's finalized-object events to the workflow.
    const triggerAccount = new ServiceAccount(this, 'TriggerServiceAccount', {
      accountId: serviceAccountId(props.databaseId, 'verify-ev'),
      displayName: `dbbackup verify trigger of ${props.databaseId}`,
      description: 'Delivers object events of the backup bucket to the verify workflow',
      project: props.project,
    });
    const grants = [
      new ProjectIamMember(this, 'TriggerReceivesEvents', {
        project: props.project,
        role: 'roles/eventarc.eventReceiver',
        member: triggerAccount.member,
      }),
      new ProjectIamMember(this, 'TriggerInvokesWorkflow', {
        project: props.project,
        role: 'roles/workflows.invoker',
        member: triggerAccount.member,
      }),
    ];
    grants.push(storageAgentPublishes(this, props.project));
    this.trigger = new EventarcTrigger(this, 'Trigger', {
      name: resourceName(props.databaseId, 'manifest'),
      project: props.project,
      // A bucket's events are delivered in its own location (a region, or eu/us/asia).
      location: props.vault.location.toLowerCase(),
      matchingCriteria: [
        { attribute: 'type', value: OBJECT_FINALIZED },
        { attribute: 'bucket', value: props.vault.bucketName },
      ],
      destination: { workflow: this.workflow.id },
      serviceAccount: triggerAccount.email,
      labels: props.labels,
      dependsOn: grants,
    });
  }
}

/** @deprecated renamed `BackupVerifier`, the AWS flavours' name. */
export class Verifier extends BackupVerifier {}
/** @deprecated renamed `BackupVerifierProps`. */
export interface VerifierProps extends BackupVerifierProps {}
