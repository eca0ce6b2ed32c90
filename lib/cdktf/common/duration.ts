import { Token } from 'cdktf';
import { ConfigError } from '../../core';

/**
 * A length of time. CDKTF has no `Duration` of its own; this one is deliberately small and
 * mirrors the part of aws-cdk-lib's `Duration` that the constructs use.
 */
export class Duration {
  /** @param amount whole seconds */
  public static seconds(amount: number): Duration {
    return new Duration(amount, 1, 'seconds');
  }
  public static minutes(amount: number): Duration {
    return new Duration(amount, 60, 'minutes');
  }
  public static hours(amount: number): Duration {
    return new Duration(amount, 3600, 'hours');
  }
  public static days(amount: number): Duration {
    return new Duration(amount, 86400, 'days');
  }

  private constructor(
    private readonly amount: number,
    private readonly unitSeconds: number,
    unit: string,
  ) {
    if (Token.isUnresolved(amount))
      throw new ConfigError('a Duration cannot be built from an unresolved token; give a number.');
    if (!Number.isFinite(amount) || amount < 0)
      throw new ConfigError(`a Duration of ${amount} ${unit} is not valid; give a finite number, 0 or more.`);
  }

  /** Whole seconds (rounded up). */
  public toSeconds(): number {
    return Math.ceil(this.amount * this.unitSeconds);
  }
  /** Whole minutes (rounded up). */
  public toMinutes(): number {
    return Math.ceil(this.toSeconds() / 60);
  }
  /** Whole hours (rounded up). */
  public toHours(): number {
    return Math.ceil(this.toSeconds() / 3600);
  }
  /** Whole days (rounded up). */
  public toDays(): number {
    return Math.ceil(this.toSeconds() / 86400);
  }
  /** In the largest whole unit, e.g. `25 hours` for `Duration.minutes(1500)`. */
  public toString(): string {
    const s = this.toSeconds();
    for (const [unit, size] of [
      ['day', 86400],
      ['hour', 3600],
      ['minute', 60],
    ] as const) {
      if (s > 0 && s % size === 0) return `${s / size} ${unit}${s === size ? '' : 's'}`;
    }
    return `${s} second${s === 1 ? '' : 's'}`;
  }
}
