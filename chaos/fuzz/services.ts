// The services `ringlet fuzz` attacks, by name, in the order a full run takes them.
import { collectiveService } from './collective-fuzz.js';
import { coordinatorService } from './coordinator-fuzz.js';
import { evaluatorGrpcService, evaluatorHttpService } from './evaluator-fuzz.js';
import { metricsService } from './metrics-fuzz.js';
import type { FuzzService } from './target.js';

export const SERVICES: FuzzService[] = [
  collectiveService,
  coordinatorService,
  evaluatorHttpService,
  evaluatorGrpcService,
  metricsService,
];
