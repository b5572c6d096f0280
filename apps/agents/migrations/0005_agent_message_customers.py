from django.db import migrations, models


class Migration(migrations.Migration):
    """Existing agents get False (their contracts were signed before Parkgate wrote to their customers: staff turn
    it on per agent); new agents default to True."""

    dependencies = [
        ("agents", "0004_agent_products"),
    ]

    operations = [
        migrations.AddField(
            model_name="agent",
            name="message_customers",
            field=models.BooleanField(default=False),
        ),
        migrations.AlterField(
            model_name="agent",
            name="message_customers",
            field=models.BooleanField(
                default=True,
                help_text="Send the booking's messages to the agent's customer (if its contract allows)",
            ),
        ),
    ]
