"""The chart of accounts, and on PostgreSQL the ledger's guards in the database itself:

- ledger lines and transactions refuse UPDATE and DELETE (entries are immutable: corrections are new entries);
- a transaction whose lines do not sum to zero cannot commit (a deferred constraint trigger, checked once per
  ledger transaction at COMMIT, so a streamed 50,000-line invoice is checked once, not per line).
"""

from django.db import migrations

GUARDS = """
CREATE OR REPLACE FUNCTION accounting_refuse_change() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'ledger entries are immutable (% on %): post a correcting transaction instead', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER accounting_ledgerline_immutable BEFORE UPDATE OR DELETE ON accounting_ledgerline
  FOR EACH ROW EXECUTE FUNCTION accounting_refuse_change();
CREATE TRIGGER accounting_ledgertransaction_immutable BEFORE UPDATE OR DELETE ON accounting_ledgertransaction
  FOR EACH ROW EXECUTE FUNCTION accounting_refuse_change();

CREATE OR REPLACE FUNCTION accounting_check_balanced() RETURNS trigger AS $$
DECLARE total numeric;
BEGIN
  SELECT COALESCE(SUM(amount), 0) INTO total FROM accounting_ledgerline WHERE transaction_id = NEW.id;
  IF total <> 0 THEN
    RAISE EXCEPTION 'ledger transaction % does not balance (debits - credits = %)', NEW.id, total
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER accounting_ledger_balanced AFTER INSERT ON accounting_ledgertransaction
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION accounting_check_balanced();
"""

DROP_GUARDS = """
DROP TRIGGER IF EXISTS accounting_ledger_balanced ON accounting_ledgertransaction;
DROP TRIGGER IF EXISTS accounting_ledgertransaction_immutable ON accounting_ledgertransaction;
DROP TRIGGER IF EXISTS accounting_ledgerline_immutable ON accounting_ledgerline;
DROP FUNCTION IF EXISTS accounting_check_balanced();
DROP FUNCTION IF EXISTS accounting_refuse_change();
"""


def seed_chart(apps, schema_editor):
    from apps.accounting import chart

    chart.ensure(apps)


def add_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARDS, params=None)


def drop_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_GUARDS, params=None)


class Migration(migrations.Migration):
    dependencies = [("accounting", "0001_initial")]

    operations = [
        migrations.RunPython(seed_chart, migrations.RunPython.noop),
        migrations.RunPython(add_guards, drop_guards),
    ]
