import type { Builder } from '@grafana/grafana-foundation-sdk/cog';
import {
  DashboardBuilder,
  DashboardLinkBuilder,
  DashboardLinkType,
  DatasourceVariableBuilder,
  FieldColorBuilder,
  FieldColorModeId,
  MappingType,
  type Panel,
  QueryVariableBuilder,
  RowBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  VariableRefresh,
  VariableSort,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import {
  GraphThresholdsStyleConfigBuilder,
  GraphThresholdsStyleMode,
  LegendDisplayMode,
  StackingConfigBuilder,
  StackingMode,
  VizLegendOptionsBuilder,
} from '@grafana/grafana-foundation-sdk/common';

/** The dashboards' data source: the variable, which defaults to the provisioned Prometheus. */
export const DS = { type: 'prometheus', uid: '${datasource}' };
/** uid of the provisioned data sources (grafana/provisioning/datasources/skillserve.yml). */
export const PROMETHEUS_UID = 'skillserve-prometheus';
export const RATE = '$__rate_interval';
const TAG = 'skillserve';

/** A dashboard as JSON, the parts the checks read. */
export interface DashboardJson {
  uid: string;
  title: string;
  panels?: (PanelJson & { panels?: PanelJson[] })[];
  templating?: { list?: { type: string; name: string; query?: unknown }[] };
}
interface PanelJson {
  type: string;
  title?: string;
  targets?: { expr?: string }[];
  datasource?: { uid?: string };
}

export function q(
  expr: string,
  legend = '__auto',
  opts: { instant?: boolean; table?: boolean } = {},
): DataqueryBuilder {
  const b = new DataqueryBuilder().expr(expr).legendFormat(legend);
  if (opts.instant) b.instant();
  if (opts.table) b.format('table' as never);
  return b;
}

type Steps = [color: string, value: number | null][];
export const thresholds = (steps: Steps) =>
  new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(steps.map(([color, value]) => ({ color, value })));

/** Lower is better: green below `warn`, orange to `bad`, red above. */
export const lowIsGood = (warn: number, bad: number) =>
  thresholds([
    ['green', null],
    ['orange', warn],
    ['red', bad],
  ]);
/** Higher is better. */
export const highIsGood = (warn: number, good: number) =>
  thresholds([
    ['red', null],
    ['orange', warn],
    ['green', good],
  ]);

const fixed = (color: string) => new FieldColorBuilder().mode(FieldColorModeId.Fixed).fixedColor(color);

export interface SeriesOpts {
  unit?: string;
  stack?: boolean;
  max?: number;
  /** A red dashed line (and a value the panel is judged by) at this value. */
  line?: number;
  /** Fixed colours by series name (legend). */
  colors?: Record<string, string>;
  /** Bars instead of lines. */
  bars?: boolean;
  span?: number;
  height?: number;
}

/** A time series panel; the description should name the metrics it reads. */
export function series(title: string, description: string, targets: DataqueryBuilder[], o: SeriesOpts = {}) {
  const p = new timeseries.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DS)
    .unit(o.unit ?? 'short')
    .min(0)
    .fillOpacity(o.stack ? 30 : 10)
    .lineWidth(1)
    .span(o.span ?? 12)
    .height(o.height ?? 8)
    .legend(
      new VizLegendOptionsBuilder()
        .displayMode(LegendDisplayMode.List)
        .placement('bottom' as never)
        .showLegend(true),
    )
    .colorScheme(new FieldColorBuilder().mode(FieldColorModeId.PaletteClassic));
  if (o.max !== undefined) p.max(o.max);
  if (o.stack) p.stacking(new StackingConfigBuilder().mode(StackingMode.Normal).group('A'));
  if (o.bars) p.drawStyle('bars' as never).fillOpacity(80);
  if (o.line !== undefined) {
    p.thresholds(
      thresholds([
        ['green', null],
        ['red', o.line],
      ]),
    ).thresholdsStyle(new GraphThresholdsStyleConfigBuilder().mode(GraphThresholdsStyleMode.Dashed));
  }
  for (const [name, color] of Object.entries(o.colors ?? {}))
    p.overrideByName(name, [{ id: 'color', value: { mode: 'fixed', fixedColor: color } }]);
  for (const t of targets) p.withTarget(t);
  return p;
}

export interface StatOpts {
  unit?: string;
  steps?: ReturnType<typeof thresholds>;
  /** Shown when the query returns nothing (e.g. a ratio with no traffic). */
  noValue?: string;
  span?: number;
  decimals?: number;
}

/** A single-value tile with its sparkline; coloured only when `steps` judge the value. */
export function tile(title: string, description: string, expr: string, o: StatOpts = {}) {
  const p = new stat.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DS)
    .unit(o.unit ?? 'short')
    .span(o.span ?? 4)
    .height(4)
    .graphMode('area' as never)
    .colorMode((o.steps ? 'value' : 'none') as never)
    .thresholds(o.steps ?? thresholds([['blue', null]]))
    .colorScheme(new FieldColorBuilder().mode(FieldColorModeId.Thresholds))
    .withTarget(q(expr));
  if (o.noValue) p.noValue(o.noValue);
  if (o.decimals !== undefined) p.decimals(o.decimals);
  return p;
}

/** A state timeline whose values map to named, coloured states. */
export function states(
  title: string,
  description: string,
  target: DataqueryBuilder,
  mapping: Record<string, [text: string, color: string]>,
  o: { span?: number; height?: number } = {},
) {
  return new statetimeline.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DS)
    .span(o.span ?? 12)
    .height(o.height ?? 8)
    .colorScheme(fixed('text'))
    .mappings([
      {
        type: MappingType.ValueToText,
        options: Object.fromEntries(
          Object.entries(mapping).map(([value, [text, color]], index) => [value, { text, color, index }]),
        ),
      },
    ])
    .showValue('never' as never)
    .mergeValues(true)
    .withTarget(target);
}

/** A table of an instant query's labels and value. */
export function labelTable(title: string, description: string, target: DataqueryBuilder, o: { span?: number } = {}) {
  return new table.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DS)
    .span(o.span ?? 12)
    .height(8)
    .withTarget(target)
    .withTransformation({ id: 'organize', options: { excludeByName: { Time: true, __name__: true } } });
}

/** `label_values` over a catalogue metric, multi-select with All. */
export function labelVariable(name: string, label: string, metric: string) {
  const query = `label_values(${metric}, ${name})`;
  return new QueryVariableBuilder(name)
    .label(label)
    .datasource(DS)
    .query(query)
    .definition(query)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*')
    .current({ text: 'All', value: '$__all', selected: true } as never);
}

export const row = (title: string) => new RowBuilder(title);

/** A dashboard with the data source variable, the links between skillserve dashboards and a 30 s refresh. */
export function dashboard(
  uid: string,
  title: string,
  description: string,
  items: (Builder<Panel> | RowBuilder)[],
  variables: QueryVariableBuilder[] = [],
): DashboardJson {
  const d = new DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags([TAG])
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .timezone('browser')
    .tooltip(1 as never)
    .link(
      new DashboardLinkBuilder('skillserve')
        .type(DashboardLinkType.Dashboards)
        .tags([TAG])
        .asDropdown(false)
        .includeVars(true)
        .keepTime(true),
    )
    .withVariable(
      new DatasourceVariableBuilder('datasource')
        .label('Data source')
        .type('prometheus')
        .current({ text: 'Prometheus', value: PROMETHEUS_UID, selected: true } as never),
    );
  for (const v of variables) d.withVariable(v);
  for (const item of items) {
    if (item instanceof RowBuilder) d.withRow(item);
    else d.withPanel(item);
  }
  return JSON.parse(JSON.stringify(d.build())) as DashboardJson;
}
