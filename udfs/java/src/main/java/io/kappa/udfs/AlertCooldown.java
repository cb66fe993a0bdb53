package io.kappa.udfs;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

import java.time.LocalDateTime;
import java.time.ZoneOffset;

/**
 * The alerting job's cool-down (jobs/alerts.py through udfs/alert_cooldown.py): the rule matches that
 * are alerts, by {@link Cooldown}, keyed by (device, alert type), the rows passed through unchanged.
 *
 * <p>Matches of one rule on one device reach it in event-time order (each rule is one operator keyed by
 * device, and channels keep order), so the decision depends only on the log, and a replay of the same
 * log suppresses the same matches.
 */
public final class AlertCooldown {
    private AlertCooldown() {}

    /**
     * The matches (rows as Table-to-DataStream gives them) that become alerts, read by position: the
     * indexes of device_id, alert_type, first_ms, last_event_time (a TIMESTAMP(3) in UTC) and cooldown_s.
     */
    public static DataStream<Row> suppressRepeats(DataStream<Row> matches, int[] columns) {
        TypeInformation<Row> type = matches.getType();
        return matches.keyBy(new DeviceAndType(columns[0], columns[1]), Types.STRING)
                .process(new CooldownFunction(columns), type)
                .name("alert_cooldown")
                .uid("alert_cooldown");
    }

    static final class DeviceAndType implements KeySelector<Row, String> {
        private final int device;
        private final int type;

        DeviceAndType(int device, int type) {
            this.device = device;
            this.type = type;
        }

        @Override
        public String getKey(Row row) {
            return row.getField(device) + "|" + row.getField(type);
        }
    }

    static final class CooldownFunction extends KeyedProcessFunction<String, Row, Row> {
        private final int[] columns;
        private transient ValueState<Cooldown> raised;
        private transient Counter suppressed;

        CooldownFunction(int[] columns) {
            this.columns = columns.clone();
        }

        @Override
        public void open(OpenContext context) {
            raised = getRuntimeContext().getState(
                    new ValueStateDescriptor<>("last_raised", TypeInformation.of(Cooldown.class)));
            // what the SQL cannot count: matches dropped here (docs/metrics.md, "Inside the jobs")
            suppressed = getRuntimeContext().getMetricGroup().addGroup("kappa").counter("alerts_suppressed");
        }

        @Override
        public void processElement(Row match, Context ctx, Collector<Row> out) throws Exception {
            long lastMs = ((LocalDateTime) match.getField(columns[3])).toInstant(ZoneOffset.UTC).toEpochMilli();
            Cooldown next = Cooldown.decide(raised.value(), ((Number) match.getField(columns[2])).longValue(),
                    lastMs, ((Number) match.getField(columns[4])).intValue());
            if (next == null) {
                suppressed.inc();
                return;
            }
            raised.update(next);
            out.collect(match);
        }
    }
}
