import { CloudRunV2JobTemplateTemplateVpcAccess } from '@cdktf/provider-google/lib/cloud-run-v2-job';

/** Options of direct VPC egress. */
export interface DirectVpcOptions {
  /** The VPC network (name or id). */
  readonly network: string;
  /** The subnetwork the job's IPs come from (name or id). */
  readonly subnetwork: string;
  /**
   * Network tags of the job, for firewall rules.
   * @default - none
   */
  readonly networkTags?: string[];
  /**
   * Send all traffic through the VPC (needs Cloud NAT or Private Google Access for Google APIs),
   * not only private ranges.
   * @default false
   */
  readonly allTraffic?: boolean;
}

/**
 * How the runner's Cloud Run job reaches a database on a private network (a VM, a private
 * Cloud SQL IP, a peered network).
 */
export class VpcEgress {
  /** Direct VPC egress: the job gets IPs in `subnetwork` (no connector to run or pay for). */
  public static directVpc(options: DirectVpcOptions): VpcEgress {
    return new VpcEgress(
      {
        networkInterfaces: [{ network: options.network, subnetwork: options.subnetwork, tags: options.networkTags }],
        egress: options.allTraffic ? 'ALL_TRAFFIC' : 'PRIVATE_RANGES_ONLY',
      },
      options.networkTags ?? [],
    );
  }

  /** A Serverless VPC Access connector (`projects/P/locations/R/connectors/C`). */
  public static connector(connectorId: string, allTraffic = false): VpcEgress {
    return new VpcEgress({ connector: connectorId, egress: allTraffic ? 'ALL_TRAFFIC' : 'PRIVATE_RANGES_ONLY' }, []);
  }

  private constructor(
    /** The Cloud Run `vpc_access` block (camelCase, as the provider class takes it). */
    public readonly vpcAccess: CloudRunV2JobTemplateTemplateVpcAccess,
    public readonly networkTags: string[],
  ) {}
}
