// `ringlet presets`: the named model shapes with their exact parameter counts.
import { Command } from 'commander';
import { PRESETS, activeParameterCount, flopsPerToken, parameterCount } from '../lm/model-config.js';
import { runCommand } from './output.js';

export const presetsCommand = new Command('presets')
  .description('list the model presets with their dimensions and exact parameter counts')
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) =>
    runCommand(opts, async () => {
      const presets = Object.entries(PRESETS).map(([name, c]) => {
        const n = parameterCount(c);
        return {
          name,
          ...c,
          params: n.total,
          params_active: activeParameterCount(c), // what a token touches: all of a dense model, top_k experts of an MoE
          params_non_embedding: n.nonEmbedding,
          flops_per_token: flopsPerToken(c),
        };
      });
      if (!opts.json)
        for (const p of presets) {
          const experts = p.moe ? ` experts=${p.moe.experts} top_k=${p.moe.top_k}` : '';
          const active = p.moe ? ` active=${p.params_active.toLocaleString('en')}` : '';
          process.stdout.write(
            `${p.name.padEnd(9)} d_model=${p.d_model} n_layers=${p.n_layers} n_heads=${p.n_heads} n_kv_heads=${p.n_kv_heads} ` +
              `context=${p.context} vocab=${p.vocab}${experts}  params=${p.params.toLocaleString('en')}${active} ` +
              `(non-embedding ${p.params_non_embedding.toLocaleString('en')})\n`,
          );
        }
      return { presets };
    }),
  );
