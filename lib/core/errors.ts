/**
 * A value given by a user (a prop, an option, an environment variable) is not acceptable.
 * The message names the value received and says how to fix it.
 */
export class ConfigError extends Error {
  public readonly name = 'ConfigError';
}
