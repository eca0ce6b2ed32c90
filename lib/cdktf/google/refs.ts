/**
 * What the constructs need to know about Google Cloud resources made elsewhere. Each is
 * satisfied both by the provider's resource class and by its data source
 * (`StorageBucket` / `DataGoogleStorageBucket`, `KmsCryptoKey` / `DataGoogleKmsCryptoKey`, …).
 */

/** A Cloud Storage bucket. */
export interface IBucketRef {
  readonly name: string;
  /** `EUROPE-WEST1`, `EU`, … */
  readonly location: string;
}

/** A Cloud KMS key (`id` is `projects/P/locations/L/keyRings/R/cryptoKeys/K`). */
export interface ICryptoKeyRef {
  readonly id: string;
}

/** A Secret Manager secret (`id` is `projects/P/secrets/S`). */
export interface ISecretRef {
  readonly id: string;
}

/** An Artifact Registry Docker repository. */
export interface IArtifactRegistryRepositoryRef {
  /** The region or multi-region, e.g. `europe-west1`. */
  readonly location: string;
  readonly project: string;
  /** The repository's short name. */
  readonly repositoryId: string;
}

/** A service account. */
export interface IServiceAccountRef {
  readonly email: string;
  /** `serviceAccount:EMAIL`. */
  readonly member: string;
}

/** A Cloud Monitoring notification channel (`id` is `projects/P/notificationChannels/N`). */
export interface INotificationChannelRef {
  readonly id: string;
}
