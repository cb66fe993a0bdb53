-- The Parquet archive's manifest and progress (0007, 0008) go with its writer: the jobs write the archive
-- as Apache Iceberg tables (sql/archive, kappa/lake.py), whose catalog is in this database too.
-- Objects the old writer left in the bucket are not deleted (README "The Iceberg archive": reading or
-- re-archiving them). One file for both flavours: plain tables, no hypertable.
DROP TABLE IF EXISTS archive_files;
DROP TABLE IF EXISTS archive_offsets;
