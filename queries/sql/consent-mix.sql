-- E-mail marketing consent (Pazarlama İzni) across current customer profiles.
SELECT email_consent, count(*) AS customers FROM customers GROUP BY 1 ORDER BY 2 DESC;
