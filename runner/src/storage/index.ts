import { StorageKind, StorageUrl } from '../../../lib/core/urls';
import { FileStorage } from './file';
import { Storage } from './storage';

export * from './storage';

/** The storage backend for a URL. */
export function openStorage(url: StorageUrl): Storage {
  switch (url.kind) {
    case StorageKind.FILE:
      return new FileStorage(url);
    case StorageKind.S3: {
      // Loaded on first use: the AWS SDK costs startup time that file:// work need not pay.
      const { S3Storage } = require('./s3') as typeof import('./s3');
      return new S3Storage(url);
    }
    case StorageKind.GCS: {
      // Loaded on first use, like the S3 backend (it needs no SDK: the JSON API over fetch).
      const { GcsStorage } = require('./gcs') as typeof import('./gcs');
      return new GcsStorage(url);
    }
    case StorageKind.AZURE: {
      // Loaded on first use, like the S3 backend: the Azure SDK costs startup time too.
      const { AzureStorage } = require('./azure') as typeof import('./azure');
      return new AzureStorage(url);
    }
  }
}
