/**
 * Task sizes the clouds accept, one table per cloud, used by every flavour (a size the cloud
 * rejects fails at synth time with the valid choices, not at deploy time).
 */
import { ConfigError } from './errors';

/** The memory a Fargate CPU size takes: `min` to `max` MiB in steps of `step`, or exactly one of `values`. */
export interface FargateMemoryRange {
  readonly cpu: number;
  readonly min: number;
  readonly max: number;
  readonly step: number;
  /** Values allowed besides the range (256 CPU units also take 512 MiB). */
  readonly extra?: readonly number[];
}

/** Fargate's valid CPU/memory combinations (Linux; AWS ECS task size table). */
export const FARGATE_SIZES: readonly FargateMemoryRange[] = [
  { cpu: 256, min: 1024, max: 2048, step: 1024, extra: [512] },
  { cpu: 512, min: 1024, max: 4096, step: 1024 },
  { cpu: 1024, min: 2048, max: 8192, step: 1024 },
  { cpu: 2048, min: 4096, max: 16384, step: 1024 },
  { cpu: 4096, min: 8192, max: 30720, step: 1024 },
  { cpu: 8192, min: 16384, max: 61440, step: 4096 },
  { cpu: 16384, min: 32768, max: 122880, step: 8192 },
];

/** Whether Fargate runs a task of `cpu` units with `memoryMiB`. */
export function isFargateSize(cpu: number, memoryMiB: number): boolean {
  const r = FARGATE_SIZES.find((s) => s.cpu === cpu);
  if (r === undefined) return false;
  return (r.extra ?? []).includes(memoryMiB) || (memoryMiB >= r.min && memoryMiB <= r.max && memoryMiB % r.step === 0);
}

/** Check a Fargate size; the message lists what goes with the CPU given. */
export function validateFargateSize(cpu: number, memoryMiB: number): void {
  const r = FARGATE_SIZES.find((s) => s.cpu === cpu);
  if (r === undefined) {
    throw new ConfigError(
      `cpu ${cpu} is not a Fargate size; use ${FARGATE_SIZES.map((s) => s.cpu).join(', ')} ` + `(1024 = 1 vCPU).`,
    );
  }
  if (!isFargateSize(cpu, memoryMiB)) {
    const extra = r.extra && r.extra.length > 0 ? `${r.extra.join(', ')} or ` : '';
    throw new ConfigError(
      `memoryLimitMiB ${memoryMiB} does not go with cpu ${cpu} on Fargate; use ` +
        `${extra}${r.min} to ${r.max} MiB in steps of ${r.step}.`,
    );
  }
}

/** The memory a Cloud Run CPU count takes (jobs, second-generation execution environment). */
export interface CloudRunSize {
  /** vCPUs. */
  readonly cpu: number;
  readonly minMiB: number;
  readonly maxMiB: number;
}

/**
 * Cloud Run's CPU/memory limits: at least 512 MiB; more than 4 GiB needs 2 CPUs, more than
 * 8 GiB 4, more than 16 GiB 6, more than 24 GiB 8; 4 CPUs need 2 GiB, 6 and 8 CPUs 4 GiB.
 */
export const CLOUD_RUN_SIZES: readonly CloudRunSize[] = [
  { cpu: 1, minMiB: 512, maxMiB: 4096 },
  { cpu: 2, minMiB: 512, maxMiB: 8192 },
  { cpu: 4, minMiB: 2048, maxMiB: 16384 },
  { cpu: 6, minMiB: 4096, maxMiB: 24576 },
  { cpu: 8, minMiB: 4096, maxMiB: 32768 },
];

/** Check a Cloud Run size (`cpu` in vCPUs, as a number or the provider's string). */
export function validateCloudRunSize(cpu: number | string, memoryMiB: number): void {
  const n = Number(cpu);
  const r = CLOUD_RUN_SIZES.find((s) => s.cpu === n);
  if (r === undefined) {
    throw new ConfigError(
      `cpu '${cpu}' is not a Cloud Run job size; use ` + `${CLOUD_RUN_SIZES.map((s) => s.cpu).join(', ')} vCPUs.`,
    );
  }
  if (!Number.isInteger(memoryMiB) || memoryMiB < r.minMiB || memoryMiB > r.maxMiB) {
    throw new ConfigError(
      `memoryLimitMiB ${memoryMiB} does not go with ${n} CPU on Cloud Run; use ${r.minMiB} ` +
        `to ${r.maxMiB} MiB (or more CPUs for more memory).`,
    );
  }
}
