package io.kappa.udfs;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

import java.util.ArrayList;
import java.util.List;

/**
 * DEVICE_SILENT in the job (jobs/alerts.py through udfs/device_silence.py): a keyed process function
 * with event-time timers around {@link DeviceClock}, one clock per device.
 *
 * <p>Why Java: it sees every on-time reading with two timer round trips each; as a PyFlink function
 * it kept a Python worker busy at about 300 readings/s and held the alerting job's latency back
 * (bench/alert_latency.py).
 */
public final class DeviceSilence {
    /** The columns of the rows {@link #detect} returns, in order (sql/alerts/device_silent.sql reads them). */
    public static final String[] FIELDS = {
        "device_id", "site_id", "first_ms", "last_ms", "silent_after_s", "rule_version", "cooldown_s", "resolved"};

    private DeviceSilence() {}

    /**
     * The silences of a stream of on-time readings (rows with event-time timestamps and watermarks, as
     * Table-to-DataStream gives them), read by position: the indexes of device_id, site_id, event_ms,
     * silent_after_s, rule_version and cooldown_s.
     */
    public static DataStream<Row> detect(DataStream<Row> readings, int[] columns) {
        TypeInformation<Row> output = Types.ROW_NAMED(FIELDS, Types.STRING, Types.STRING, Types.LONG, Types.LONG,
                Types.INT, Types.STRING, Types.INT, Types.BOOLEAN);
        return readings.keyBy(new DeviceKey(columns[0]), Types.STRING)
                .process(new SilenceFunction(columns), output)
                .name("device_silence")
                .uid("device_silence");
    }

    static final class DeviceKey implements KeySelector<Row, String> {
        private final int column;

        DeviceKey(int column) {
            this.column = column;
        }

        @Override
        public String getKey(Row row) {
            return (String) row.getField(column);
        }
    }

    static final class SilenceFunction extends KeyedProcessFunction<String, Row, Row> {
        private final int[] columns;
        private transient ValueState<DeviceClock> clock;
        private transient Long seenWatermark; // the highest data watermark (see DeviceClock.onTimer)
        private transient Counter raised;
        private transient Counter resolved;

        SilenceFunction(int[] columns) {
            this.columns = columns.clone();
        }

        @Override
        public void open(OpenContext context) {
            clock = getRuntimeContext().getState(
                    new ValueStateDescriptor<>("device_clock", TypeInformation.of(DeviceClock.class)));
            MetricGroup group = getRuntimeContext().getMetricGroup().addGroup("kappa"); // docs/metrics.md
            raised = group.counter("silences_raised");
            resolved = group.counter("silences_resolved");
        }

        private long see(long watermark) {
            if (watermark < DeviceClock.MAX_WATERMARK && (seenWatermark == null || watermark > seenWatermark)) {
                seenWatermark = watermark;
            }
            return watermark;
        }

        @Override
        public void processElement(Row row, Context ctx, Collector<Row> out) throws Exception {
            see(ctx.timerService().currentWatermark());
            DeviceClock current = clock.value();
            if (current == null) {
                current = new DeviceClock();
            }
            DeviceClock.Seen seen = new DeviceClock.Seen(((Number) row.getField(columns[2])).longValue(),
                    (String) row.getField(columns[1]), ((Number) row.getField(columns[3])).intValue(),
                    (String) row.getField(columns[4]), ((Number) row.getField(columns[5])).intValue());
            ctx.timerService().registerEventTimeTimer(current.onReading(seen));
            clock.update(current);
        }

        @Override
        public void onTimer(long timestamp, OnTimerContext ctx, Collector<Row> out) throws Exception {
            DeviceClock current = clock.value();
            if (current == null) {
                current = new DeviceClock();
            }
            long watermark = see(ctx.timerService().currentWatermark());
            List<DeviceClock.Silence> alerts = new ArrayList<>(2);
            for (long timer : current.onTimer(ctx.getCurrentKey(), timestamp, watermark, seenWatermark, alerts)) {
                ctx.timerService().registerEventTimeTimer(timer);
            }
            clock.update(current);
            for (DeviceClock.Silence alert : alerts) {
                (alert.resolved() ? resolved : raised).inc();
                out.collect(Row.of(alert.deviceId(), alert.siteId(), alert.firstMs(), alert.lastMs(),
                        alert.silentAfterS(), alert.ruleVersion(), alert.cooldownS(), alert.resolved()));
            }
        }
    }
}
