from apps.core.jobs import job
from apps.mail import services


@job("mail.process")
def process(*, message_id: int) -> None:
    services.inbound_email_process(message_id=message_id)
