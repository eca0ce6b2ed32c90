import { ITerraformDependable } from 'cdktf';
import { Construct } from 'constructs';
import { CloudRunV2Job, CloudRunV2JobTemplateTemplateContainersEnv } from '@cdktf/provider-google/lib/cloud-run-v2-job';
import { ConfigError, RUNNER_CONTAINER, validateCloudRunSize } from '../../../core';
import { Duration } from '../../common/duration';
import { VpcEgress } from '../network';

/** What a runner job (backup or verify) is made of. */
export interface JobSpec {
  readonly name: string;
  readonly project: string;
  readonly region: string;
  readonly image: string;
  readonly args: readonly string[];
  readonly environment: Readonly<Record<string, string>>;
  readonly secretEnvironment?: Readonly<Record<string, { secret: string; version: string }>>;
  readonly serviceAccountEmail: string;
  readonly vpcEgress?: VpcEgress;
  readonly cloudSqlInstances?: readonly string[];
  readonly cpu: string;
  readonly memoryLimitMiB: number;
  readonly timeout: Duration;
  readonly maxRetries: number;
  readonly deletionProtection: boolean;
  readonly labels?: Record<string, string>;
  readonly dependsOn?: ITerraformDependable[];
  /** A sidecar started before the runner (the drill's scratch database), healthy before the runner starts. */
  readonly sidecar?: {
    readonly name: string;
    readonly image: string;
    readonly args?: readonly string[];
    readonly environment: Readonly<Record<string, string>>;
    readonly port: number;
    readonly cpu: string;
    readonly memoryLimitMiB: number;
  };
}

/** A Cloud Run v2 job that runs the runner image once per execution. */
export function runnerJob(scope: Construct, id: string, spec: JobSpec): CloudRunV2Job {
  // The one Cloud Run size table (lib/core/sizing).
  validateCloudRunSize(spec.cpu, spec.memoryLimitMiB);
  const timeout = spec.timeout.toSeconds();
  if (timeout < 1 || timeout > 24 * 3600)
    throw new ConfigError(`timeout is ${spec.timeout}; a Cloud Run job task may run up to 24 hours.`);
  if (!Number.isInteger(spec.maxRetries) || spec.maxRetries < 0 || spec.maxRetries > 10) {
    throw new ConfigError(`maxRetries is ${spec.maxRetries}; give a whole number from 0 to 10.`);
  }
  const env: CloudRunV2JobTemplateTemplateContainersEnv[] = Object.entries(spec.environment)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => ({ name, value }));
  for (const [name, ref] of Object.entries(spec.secretEnvironment ?? {})) {
    env.push({ name, valueSource: { secretKeyRef: { secret: ref.secret, version: ref.version } } });
  }
  const sql = spec.cloudSqlInstances ?? [];
  return new CloudRunV2Job(scope, id, {
    name: spec.name,
    project: spec.project,
    location: spec.region,
    deletionProtection: spec.deletionProtection,
    labels: spec.labels,
    dependsOn: spec.dependsOn,
    template: {
      taskCount: 1,
      parallelism: 1,
      labels: spec.labels,
      template: {
        serviceAccount: spec.serviceAccountEmail,
        timeout: `${timeout}s`,
        maxRetries: spec.maxRetries,
        executionEnvironment: 'EXECUTION_ENVIRONMENT_GEN2',
        containers: [
          ...(spec.sidecar === undefined
            ? []
            : [
                {
                  name: spec.sidecar.name,
                  image: spec.sidecar.image,
                  args: spec.sidecar.args === undefined ? undefined : [...spec.sidecar.args],
                  env: Object.entries(spec.sidecar.environment).map(([name, value]) => ({ name, value })),
                  resources: { limits: { cpu: spec.sidecar.cpu, memory: `${spec.sidecar.memoryLimitMiB}Mi` } },
                  startupProbe: {
                    tcpSocket: { port: spec.sidecar.port },
                    periodSeconds: 10,
                    failureThreshold: 30,
                    timeoutSeconds: 5,
                  },
                },
              ]),
          {
            name: RUNNER_CONTAINER,
            dependsOn: spec.sidecar === undefined ? undefined : [spec.sidecar.name],
            image: spec.image,
            args: [...spec.args],
            env,
            resources: { limits: { cpu: spec.cpu, memory: `${spec.memoryLimitMiB}Mi` } },
            volumeMounts: sql.length > 0 ? [{ name: 'cloudsql', mountPath: '/cloudsql' }] : undefined,
          },
        ],
        volumes: sql.length > 0 ? [{ name: 'cloudsql', cloudSqlInstance: { instances: [...sql] } }] : undefined,
        vpcAccess: spec.vpcEgress?.vpcAccess,
      },
    },
  });
}
