// Internal: checks shared by the CDKTF AWS task definitions.
import { ConfigError } from '../../../core';
import { Duration } from '../../common/duration';

/** Check a task timeout: whole minutes, 5 minutes to 7 days (as the AWS CDK flavour). */
export function checkTaskTimeout(name: string, timeout: Duration): void {
  const seconds = timeout.toSeconds();
  if (seconds % 60 !== 0 || seconds < 300 || seconds > 7 * 86400) {
    throw new ConfigError(`${name} is ${timeout}; use whole minutes from 5 minutes to 7 days, e.g. Duration.hours(4).`);
  }
}
