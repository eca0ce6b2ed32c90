// The SQL engine contract (engine-contract.ts) against a real PostgreSQL server.
import { postgres } from '../harness/engines';
import { sqlEngineContract } from './engine-contract';

sqlEngineContract(postgres);
