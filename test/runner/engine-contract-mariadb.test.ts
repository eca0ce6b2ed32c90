// The SQL engine contract (engine-contract.ts) against a real MariaDB server.
import { mariadb } from '../harness/engines';
import { sqlEngineContract } from './engine-contract';

sqlEngineContract(mariadb);
